"""The ASGI app served by uvicorn in a thread (no encode workers): dialect routes, auth and error shapes
over real HTTP, without FFmpeg."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn

from tests.servers import free_port
from vidmill.app import create_app
from vidmill.config import Settings
from vidmill.runtime import Runtime

MAIN_KEY = "mainkey0123456789"


class LiveApp:
    def __init__(self, rt: Runtime):
        self.rt = rt
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(create_app(rt.settings, runtime=rt), host="127.0.0.1", port=port,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def rt(tmp_path):
    settings = Settings(data_dir=tmp_path, api_key=MAIN_KEY, allow_private_networks=True, smtp_host="127.0.0.1")
    return Runtime(settings, start_workers=False)


@pytest.fixture
def client(rt):
    with LiveApp(rt) as app, httpx.Client(base_url=app.url, timeout=10) as c:
        yield c


@pytest.fixture
def keys(rt, client):
    """Two projects: ``default`` and ``other``: name -> (API key, project id)."""
    other, other_key = rt.projects.create("other")
    return {"main": (MAIN_KEY, rt.projects.by_key(MAIN_KEY).id), "other": (other_key, other.id)}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}

"""VIDMILL_PUBLIC_URL is the base of every URL handed out; VIDMILL_MAX_SOURCE_BYTES bounds downloads."""

from __future__ import annotations

import httpx
import pytest
from qencode3.client import Client

from tests.integration.helpers import wait_task
from tests.servers import VidmillServer, free_port

pytestmark = pytest.mark.integration


def test_public_url_and_source_limit(tmp_path, origin):
    port = free_port()
    public = f"http://127.0.0.1:{port}/"  # e.g. behind a proxy; the trailing slash is dropped
    env = {"VIDMILL_PUBLIC_URL": public, "VIDMILL_MAX_SOURCE_BYTES": "2000000"}
    with VidmillServer(tmp_path / "d", env=env, port=port) as server:
        client = Client(server.api_key, api_url=server.url + "/")
        task = client.create_task()
        assert task.upload_url == f"http://127.0.0.1:{port}/v1/upload_file"
        task.custom_start({"query": {"source": f"{origin.url}/carphone_qcif_sar.mp4",
                                     "format": [{"output": "mp4", "duration": 0.5}]}})
        assert task.status_url == f"http://127.0.0.1:{port}/v1/status"
        status = wait_task(task)
        assert status["status"] == "completed"
        url = status["videos"][0]["url"]
        assert url.startswith(f"http://127.0.0.1:{port}/files/")
        got = httpx.get(url, headers={"Range": "bytes=0-99", "Origin": "https://player.example"})
        assert got.status_code == 206 and len(got.content) == 100
        assert got.headers["access-control-allow-origin"] == "*"  # web players live on other origins

        big = client.create_task()
        big.custom_start({"query": {"source": f"{origin.url}/bbb_trailer_720p_55s_mp3.mp4",
                                    "format": [{"output": "mp4"}]}})
        status = wait_task(big)
        assert status["status"] == "error"
        assert "2000000" in status["error_description"] or "too large" in status["error_description"].lower()

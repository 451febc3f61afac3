"""The same server on PostgreSQL (VIDMILL_DATABASE_URL): SDK tasks complete, and survive a kill -9."""

from __future__ import annotations

import time

import pytest
from qencode3.client import Client

from tests.integration.helpers import wait_task
from tests.servers import VidmillServer
from tests.services import fresh_pg_database

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_url():
    url, drop = fresh_pg_database()
    yield url
    drop()


def test_sdk_task_on_postgres_survives_restart(tmp_path, origin, pg_url):
    env = {"VIDMILL_DATABASE_URL": pg_url}
    server = VidmillServer(tmp_path / "d", env=env).start()
    try:
        client = Client(server.api_key, api_url=server.url + "/")
        task = client.create_task()
        task.custom_start({"query": {"source": f"{origin.url}/bbb_720p_5s_aac51.mp4",
                                     "format": [{"output": "mp4", "size": "640x360"}, {"output": "metadata"}]}})
        assert not task.error, task.message
        for _ in range(300):
            if task.status()["status"] == "encoding":
                break
            time.sleep(0.05)
        server.kill9()
    finally:
        server.stop()
    again = VidmillServer(tmp_path / "d", env=env, port=server.port).start()
    try:
        status = wait_task(task, timeout=120)
        assert status["status"] == "completed", status
        assert [v["output_format"] for v in status["videos"]] == ["mp4", "metadata"]
        assert status["videos"][0]["meta"]["width"] == 640
    finally:
        again.stop()

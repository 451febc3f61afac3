"""kill -9 of the server mid-encode, then a restart: the task still completes, nothing is lost."""

from __future__ import annotations

import subprocess
import time

import pytest
from qencode3.client import Client

from tests.integration.helpers import download, streams, wait_task
from tests.servers import VidmillServer

pytestmark = pytest.mark.integration


def _ffmpeg_running_for(token: str) -> bool:
    out = subprocess.run(["pgrep", "-f", token], capture_output=True, text=True)
    return bool(out.stdout.strip())


def test_kill9_mid_encode_then_restart_completes(tmp_path, origin):
    data = tmp_path / "data"
    first = VidmillServer(data).start()
    try:
        client = Client(first.api_key, api_url=first.url + "/")
        task = client.create_task()
        task.custom_start({"query": {"source": f"{origin.url}/bbb_trailer_720p_55s_mp3.mp4",
                                     "format": [{"output": "mp4", "size": "640x360"}]}})
        assert not task.error, task.message
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st = task.status()
            if st["status"] == "encoding" and st["percent"] >= 5:
                break
            assert st["status"] not in ("completed", "error"), st
            time.sleep(0.2)
        else:
            raise AssertionError("encode never got under way")
        killed_at = st["percent"]
        first.kill9()
    finally:
        first.stop()
    time.sleep(0.5)
    assert not _ffmpeg_running_for(task.task_token), "FFmpeg outlived the killed server"

    second = VidmillServer(data, port=first.port).start()
    try:
        status = wait_task(task, timeout=300)
        assert status["status"] == "completed", status
        out = tmp_path / "out.mp4"
        download(status["videos"][0]["url"], out)
        info = streams(out)
        assert (info["video"]["width"], info["video"]["height"]) == (640, 360)
        assert info["duration"] == pytest.approx(55, abs=2)
        assert killed_at < 100
    finally:
        second.stop()


def test_sigterm_mid_encode_hands_the_job_back(tmp_path, origin):
    """A graceful stop ends FFmpeg, releases the job to the queue, exits promptly; the next start finishes it."""
    data = tmp_path / "data"
    first = VidmillServer(data).start()
    client = Client(first.api_key, api_url=first.url + "/")
    task = client.create_task()
    task.custom_start({"query": {"source": f"{origin.url}/bbb_trailer_720p_55s_mp3.mp4",
                                 "format": [{"output": "mp4", "size": "640x360", "duration": 30}]}})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and task.status()["status"] != "encoding":
        time.sleep(0.1)
    t0 = time.monotonic()
    first.stop()
    assert time.monotonic() - t0 < 15
    assert not _ffmpeg_running_for(task.task_token)
    second = VidmillServer(data, port=first.port).start()
    try:
        status = wait_task(task, timeout=300)
        assert status["status"] == "completed", status
    finally:
        second.stop()

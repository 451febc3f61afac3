"""Priority orders the queue: with one worker, a later high-priority TransparentEdge order runs before an
earlier low-priority one (and an order that says nothing runs level with a Qencode task, first come first
served)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.api.conftest import MAIN_KEY, LiveApp
from tests.servers import ROOT
from vidmill.config import Settings
from vidmill.runtime import Runtime

pytestmark = pytest.mark.integration


def _wait(pred, timeout, what, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout}s\nworker log:\n{log.read_text()}")


def test_one_worker_runs_a_later_high_priority_order_first(tmp_path, origin, receiver):
    # the API queues with no worker of its own; the one worker starts once all four are queued
    rt = Runtime(Settings(data_dir=tmp_path, api_key=MAIN_KEY, allow_private_networks=True), start_workers=False)
    source = f"{origin.url}/bbb_720p_5s_aac51.mp4"
    auth = {"Authorization": f"Bearer {MAIN_KEY}"}
    with LiveApp(rt) as app, httpx.Client(base_url=app.url, timeout=30) as c:
        company = rt.projects.by_key(MAIN_KEY).id
        prof = c.post(f"/v1/media/{company}/profiles", headers=auth,
                      json={"name": "tiny", "settings": {"output": "mp4", "size": "160x90", "duration": 2}}).json()

        def order(priority: int, name: str) -> str:
            r = c.post(f"/v1/media/{company}/transcode", headers=auth, json={
                "origin": source, "priority": priority,
                "notifications": [{"callback_url": f"{receiver.url}?d=prio-{name}"}],
                "jobs": [{"profile_id": prof["id"], "filename": f"{name}.mp4", "label": name}]})
            assert r.status_code == 201, r.text
            return r.json()["order_id"]

        low = order(1, "low")
        default = order(5, "default")
        token = c.post("/v1/access_token", data={"api_key": MAIN_KEY}).json()["token"]
        task = c.post("/v1/create_task", data={"token": token}).json()["task_token"]
        query = {"query": {"source": source, "format": [{"output": "mp4", "size": "160x90", "duration": 2}]}}
        assert c.post("/v1/start_encode2", data={"task_token": task, "query": json.dumps(query)}).json()["error"] == 0
        high = order(9, "high")

        env = {"VIDMILL_DATA_DIR": str(tmp_path), "VIDMILL_API_KEY": MAIN_KEY, "VIDMILL_ALLOW_PRIVATE_NETWORKS": "1",
               "VIDMILL_POLL_INTERVAL": "0.2", "VIDMILL_WORKERS": "1"}
        log_path = tmp_path / "worker.log"
        with open(log_path, "ab") as log:
            worker = subprocess.Popen([sys.executable, "-m", "vidmill.cli", "worker"], env={**os.environ, **env},
                                      stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        try:
            def view(oid):
                return rt.tasks.find(rt.projects.by_key(MAIN_KEY), "transparent", oid, by="external_id")

            def done():
                return all(view(o).status in ("completed", "error") for o in (low, default, high)) and \
                    rt.tasks.get(task).status in ("completed", "error")

            _wait(done, 240, "all four tasks finished", log_path)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        statuses = [c.get(f"/v1/media/{company}/transcode/{o}", headers=auth).json()["status"]
                    for o in (low, default, high)]
    assert statuses == ["FINISHED"] * 3
    assert "h264_nvenc: not used (" in log_path.read_text()  # the worker's start line (no NVIDIA GPU here)
    finished = {"low": view(low).finished_at, "default": view(default).finished_at,
                "qencode": rt.tasks.get(task).finished_at, "high": view(high).finished_at}
    # high (queued last) first; then the default order and the Qencode task in the order they came; low last
    assert sorted(finished, key=finished.get) == ["high", "default", "qencode", "low"], finished

"""``vidmill worker``: a process that never builds the web app encodes the jobs an API process queued and
delivers the callbacks of every dialect, each in its own shape."""

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
from tests.storage_servers import MotoS3
from vidmill.config import Settings
from vidmill.runtime import Runtime

pytestmark = pytest.mark.integration


@pytest.fixture
def moto(tmp_path):
    (tmp_path / "moto").mkdir()
    server = MotoS3(tmp_path / "moto")
    server.client().create_bucket(Bucket="octet-out")
    yield server
    server.stop()


@pytest.fixture
def api_and_worker(tmp_path, moto):
    """An API with no workers (uvicorn in this process) and a ``vidmill worker`` process on the same data dir."""
    env = {"VIDMILL_DATA_DIR": str(tmp_path), "VIDMILL_API_KEY": MAIN_KEY, "VIDMILL_ALLOW_PRIVATE_NETWORKS": "1",
           "VIDMILL_POLL_INTERVAL": "0.2", "VIDMILL_LEASE_SECONDS": "5", "VIDMILL_WORKERS": "2",
           "VIDMILL_OCTET_S3_ENDPOINT": moto.endpoint}
    rt = Runtime(Settings(data_dir=tmp_path, api_key=MAIN_KEY, allow_private_networks=True,
                          octet_s3_endpoint=moto.endpoint), start_workers=False)
    log = open(tmp_path / "worker.log", "ab")
    worker = subprocess.Popen([sys.executable, "-m", "vidmill.cli", "worker"], env={**os.environ, **env},
                              stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    log.close()
    try:
        with LiveApp(rt) as app:
            yield app, worker, tmp_path / "worker.log"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _wait(pred, timeout=120.0, what="condition", log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout}s" + (f"\nworker log:\n{log.read_text()}" if log else ""))


def test_worker_delivers_every_dialects_callbacks(api_and_worker, moto, origin, receiver):
    app, worker, log = api_and_worker
    source = f"{origin.url}/bbb_720p_5s_aac51.mp4"
    hook = receiver.url
    auth = {"Authorization": f"Bearer {MAIN_KEY}"}
    with httpx.Client(base_url=app.url, timeout=30) as c:
        # Qencode
        token = c.post("/v1/access_token", data={"api_key": MAIN_KEY}).json()["token"]
        task = c.post("/v1/create_task", data={"token": token}).json()["task_token"]
        query = {"query": {"source": source, "callback_url": f"{hook}?d=worker-qencode",
                           "format": [{"output": "mp4", "size": "160x90"}]}}
        assert c.post("/v1/start_encode2", data={"task_token": task, "query": json.dumps(query)}).json()["error"] == 0
        # TransparentEdge
        company = app.rt.projects.by_key(MAIN_KEY).id
        prof = c.post(f"/v1/media/{company}/profiles", headers=auth,
                      json={"name": "tiny", "settings": {"output": "mp4", "size": "160x90"}}).json()
        r = c.post(f"/v1/media/{company}/transcode", headers=auth, json={
            "origin": source, "notifications": [{"callback_url": f"{hook}?d=worker-te"}],
            "jobs": [{"profile_id": prof["id"], "filename": "tiny.mp4", "label": "l"}]})
        assert r.status_code == 201, r.text
        order_id = r.json()["order_id"]
        # Octet
        r = c.post("/v0/jobs/create", headers=auth, json={
            "input": {"url": source}, "callback": f"{hook}?d=worker-octet",
            "destination": {"provider": "s3", "region": "us-east-1", "bucket": "octet-out",
                            "creds": {"access_key_id": moto.key, "secret_access_key": moto.secret}},
            "outputs": [{"codec": "h264", "resolution": "160x90", "dest_path": "w/tiny.mp4"}]})
        assert r.status_code == 200, r.text
        job_id = r.json()["job_id"]

    def arrived():
        return any(c.path == "/hook?d=worker-qencode" and c.form.get("event") == "saved" for c in receiver.calls) and \
            any(c.path == "/hook?d=worker-te" for c in receiver.calls) and \
            any(c.path == "/hook?d=worker-octet" for c in receiver.calls)

    _wait(arrived, timeout=240, what="callbacks of all three dialects", log=log)
    assert worker.poll() is None
    qencode = [c for c in receiver.calls if c.path == "/hook?d=worker-qencode"]
    assert [c.form["event"] for c in qencode][-1] == "saved"
    assert json.loads(qencode[-1].form["status"])["status"] == "completed"
    te = [c for c in receiver.calls if c.path == "/hook?d=worker-te"]
    assert te[-1].headers.get("Content-Type") == "application/json"
    body = json.loads(te[-1].body)
    assert body["order_id"] == order_id and body["status"] == "FINISHED"
    assert body["transcodingjob_set"][0]["progress"] == 100.0
    (octet,) = [c for c in receiver.calls if c.path == "/hook?d=worker-octet"]
    assert octet.headers.get("Content-Type") == "application/json"
    assert json.loads(octet.body) == {"api_version": "v0", "job_id": job_id, "status": "complete"}
    assert moto.client().head_object(Bucket="octet-out", Key="w/tiny.mp4")["ContentLength"] > 0

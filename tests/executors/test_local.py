"""The local executor's worker threads survive failures outside a job's own error handling."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy.exc import OperationalError

from tests.servers import StaticServer
from vidmill.config import Settings
from vidmill.core.query import parse_query
from vidmill.runtime import Runtime

pytestmark = pytest.mark.integration


def _wait(rt, token, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = rt.tasks.get(token)
        if view.status in ("completed", "error"):
            return view
        time.sleep(0.1)
    raise AssertionError(f"task {token} stuck in {rt.tasks.get(token).status}")


def test_worker_survives_a_store_error_while_failing_a_job(tmp_path, media):
    settings = Settings(data_dir=tmp_path, allow_private_networks=True, workers=1, lease_seconds=2,
                        poll_interval=0.1)
    rt = Runtime(settings)
    real_fail = rt.jobs.fail
    calls = []

    def flaky_fail(*a, **kw):
        calls.append(a)
        if len(calls) == 1:
            raise OperationalError("UPDATE jobs", {}, Exception("database is locked"))
        return real_fail(*a, **kw)

    rt.jobs.fail = flaky_fail
    (tmp_path / "origin").mkdir()
    (tmp_path / "origin" / "notes.txt").write_text("not a video\n")
    (tmp_path / "origin" / "clip.mp4").symlink_to(media / "carphone_qcif_sar.mp4")
    rt.start()
    try:
        with StaticServer(tmp_path / "origin") as origin:
            project, _ = rt.projects.create("p")

            def start(name, fmt):
                token = rt.tasks.create(project)
                rt.tasks.start(token, parse_query(json.dumps(
                    {"query": {"source": f"{origin.url}/{name}", "format": [fmt]}})))
                rt.executor.submit()
                return token

            bad = start("notes.txt", {"output": "mp4"})
            good = start("clip.mp4", {"output": "mp4", "duration": 0.5})
            assert _wait(rt, good).status == "completed"
            assert rt.executor.alive()
            # the failure that could not be recorded is not lost: the lease lapses and the job runs again
            view = _wait(rt, bad)
            assert view.status == "error" and "media" in view.error_description
            assert len(calls) == 2
    finally:
        rt.stop()

"""pipeline.run_job with real FFmpeg, a real HTTP origin and a real SQLite store (no API server)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.servers import StaticServer
from vidmill import pipeline
from vidmill.config import Settings
from vidmill.core.query import parse_query
from vidmill.engine.plan import Plan, PlannedOutput, Step
from vidmill.engine import ffmpeg as ffmpeg_bin
from vidmill.pipeline import JobContext, run_job
from vidmill.runtime import Runtime
from vidmill.store.models import Job

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path, media):
    rt = Runtime(Settings(data_dir=tmp_path / "data", allow_private_networks=True, lease_seconds=5),
                 start_workers=False)
    project, _ = rt.projects.create("p")
    with StaticServer(media) as origin:
        yield rt, project, origin, JobContext(rt.settings, rt.jobs)
    rt.db.dispose()


def _start(rt, project, origin, formats, source="carphone_qcif_sar.mp4"):
    token = rt.tasks.create(project)
    q = parse_query(json.dumps({"query": {"source": f"{origin.url}/{source}", "format": formats}}))
    rt.tasks.start(token, q)
    return token


def _drain(rt, ctx):
    while (claimed := rt.jobs.claim("test-owner")) is not None:
        run_job(ctx, claimed)


def test_ffmpeg_failure_is_an_error_task_with_ffmpegs_line(env, monkeypatch, tmp_path):
    rt, project, origin, ctx = env

    def broken_plan(fmt, *, source, workdir, **kw):
        out = workdir / "video.mp4"
        argv = [ffmpeg_bin.ffmpeg_exe(), "-y", "-i", f"file:{source}", "-vf", "nosuchfilter", f"file:{out}"]
        return Plan(steps=[Step(argv, 4.0, "encode")], outputs=[PlannedOutput(0, 0, "file", [out], probe=out)])

    monkeypatch.setattr(pipeline, "plan_output", broken_plan)
    token = _start(rt, project, origin, [{"output": "mp4"}])
    _drain(rt, ctx)
    view = rt.tasks.get(token)
    assert view.status == "error" and view.error == 1
    assert "No such filter: 'nosuchfilter'" in view.error_description
    assert view.jobs[0].error_description.startswith("FFmpeg failed:")
    assert str(rt.settings.data_dir) not in view.error_description  # no server paths leak to users
    assert not (rt.settings.work_dir / token).exists()  # work dir cleaned up


def test_ffmpeg_errors_do_not_leak_server_paths(env, monkeypatch):
    rt, project, origin, ctx = env

    def plan(fmt, *, source, workdir, **kw):
        out = workdir / "nodir" / "video.mp4"  # FFmpeg names the output path it could not open
        return Plan(steps=[Step([ffmpeg_bin.ffmpeg_exe(), "-y", "-i", f"file:{source}", f"file:{out}"],
                                1.0, "encode")], outputs=[PlannedOutput(0, 0, "file", [out], probe=out)])

    monkeypatch.setattr(pipeline, "plan_output", plan)
    token = _start(rt, project, origin, [{"output": "mp4"}])
    _drain(rt, ctx)
    view = rt.tasks.get(token)
    assert "No such file or directory" in view.error_description
    assert str(rt.settings.data_dir) not in view.error_description
    assert "Error opening output" in view.error_description and "nodir/video.mp4" in view.error_description


def test_soft_fail_output_does_not_fail_the_task(env, monkeypatch):
    rt, project, origin, ctx = env
    real = pipeline.plan_output

    def plan(fmt, **kw):
        if fmt.size == "160x120":
            out = kw["workdir"] / "x.mp4"
            return Plan(steps=[Step([ffmpeg_bin.ffmpeg_exe(), "-y", "-i", "file:/nonexistent", f"file:{out}"],
                                    1.0, "encode")], outputs=[PlannedOutput(0, 0, "file", [out], probe=out)])
        return real(fmt, **kw)

    monkeypatch.setattr(pipeline, "plan_output", plan)
    token = _start(rt, project, origin, [{"output": "mp4", "size": "160x120", "allow_soft_fail": 1},
                                         {"output": "mp4", "size": "128x96", "duration": 1}])
    _drain(rt, ctx)
    view = rt.tasks.get(token)
    assert view.status == "completed" and view.error == 0
    assert [j.status for j in view.jobs] == ["error", "completed"]
    assert any(w["code"] == "soft_fail" and w["format"] == 0 for w in view.warnings)


def test_upscale_rule_skips_larger_outputs(env):
    rt, project, origin, ctx = env
    token = _start(rt, project, origin, [{"output": "mp4", "size": "640x480", "duration": 1},
                                         {"output": "mp4", "size": "160x120", "duration": 1}])
    _drain(rt, ctx)
    view = rt.tasks.get(token)
    assert view.status == "completed"
    assert [j.status for j in view.jobs] == ["skipped", "completed"]
    assert any(w["code"] == "skipped" and w["format"] == 0 for w in view.warnings)


def test_upscale_rule_all_larger_runs_first_at_source_size(env):
    rt, project, origin, ctx = env
    token = _start(rt, project, origin, [{"output": "mp4", "size": "640x480", "duration": 1},
                                         {"output": "mp4", "size": "1280x960", "duration": 1}])
    _drain(rt, ctx)
    view = rt.tasks.get(token)
    assert [j.status for j in view.jobs] == ["completed", "skipped"]
    meta = view.jobs[0].result["facts"]
    assert meta["height"] == 144  # carphone is 176x144: the source size, not 640x480


def test_upscale_on_gives_exact_dimensions(env):
    rt, project, origin, ctx = env
    token = rt.tasks.create(project)
    q = parse_query(json.dumps({"query": {"source": f"{origin.url}/carphone_qcif_sar.mp4", "upscale": 1,
                                          "format": [{"output": "mp4", "size": "352x288", "duration": 1}]}}))
    rt.tasks.start(token, q)
    _drain(rt, ctx)
    meta = rt.tasks.get(token).jobs[0].result["facts"]
    assert (meta["width"], meta["height"]) == (352, 288)


def test_source_downloaded_once_for_all_formats(env, monkeypatch, media):
    rt, project, origin, ctx = env
    calls = []
    real_fetch = pipeline.sources.fetch

    def counting_fetch(*a, **kw):
        calls.append(a[0])
        return real_fetch(*a, **kw)

    monkeypatch.setattr(pipeline.sources, "fetch", counting_fetch)
    token = _start(rt, project, origin, [{"output": "mp4", "duration": 0.5}, {"output": "metadata"},
                                         {"output": "webm", "duration": 0.5}])
    jobs = [rt.jobs.claim(f"w{i}") for i in range(3)]
    threads = [threading.Thread(target=run_job, args=(ctx, c)) for c in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    view = rt.tasks.get(token)
    assert view.status == "completed", [j.error_description for j in view.jobs]
    assert len(calls) == 1
    assert view.source_size == (media / "carphone_qcif_sar.mp4").stat().st_size
    published = [j.result["files"][0]["path"] for j in view.jobs]
    assert len(set(p.split("/")[0] for p in published)) == 3  # each output its own unguessable folder
    for rel in published:
        assert (rt.settings.files_dir / rel).is_file()


def test_a_job_that_lost_its_lease_stops_encoding(tmp_path, media, monkeypatch):
    """Another worker took the job over: the next progress write raises LeaseLost, FFmpeg is stopped at once
    and the job is left to its new owner (neither failed nor completed by the old one)."""
    # a lease far longer than the test: the heartbeat (every lease/3) never notices first, progress does
    rt = Runtime(Settings(data_dir=tmp_path / "data", allow_private_networks=True, lease_seconds=600),
                 start_workers=False)
    project, _ = rt.projects.create("p")
    runs = []
    real_run = pipeline.runner.run

    def record(*args, **kwargs):
        runs.append(time.monotonic())
        return real_run(*args, **kwargs)

    monkeypatch.setattr(pipeline.runner, "run", record)
    try:
        with StaticServer(media) as origin:
            token = _start(rt, project, origin, [{"output": "mp4", "size": "640x360"}],
                           source="bbb_trailer_720p_55s_mp3.mp4")
            claimed = rt.jobs.claim("old-owner")
            ctx = JobContext(rt.settings, rt.jobs)

            def steal():
                while not runs:
                    time.sleep(0.05)
                time.sleep(2)
                with rt.db.tx() as s:  # what a claim after a lapsed lease does to the row
                    s.get(Job, claimed.job_id).lease_owner = "new-owner"
                stolen_at.append(time.monotonic())

            stolen_at: list[float] = []
            thief = threading.Thread(target=steal)
            thief.start()
            run_job(ctx, claimed)
            ended = time.monotonic()
            thief.join(5)
        print(f"\nencode stopped {ended - stolen_at[0]:.1f} s after the theft ({ended - runs[0]:.1f} s after it began)")
        assert stolen_at and ended - stolen_at[0] < 8  # a 55 s encode stopped within seconds of the theft
        view = rt.tasks.get(token)
        assert view.jobs[0].status not in ("completed", "error") and view.status != "error"
        with rt.db.tx() as s:
            assert s.get(Job, claimed.job_id).lease_owner == "new-owner"
    finally:
        rt.db.dispose()

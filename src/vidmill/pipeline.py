"""Runs one claimed job end to end: fetch source → probe → plan → FFmpeg → publish.

Executors call :func:`run_job`; every state it reaches is written through the JobStore, so a
worker that dies mid-way leaves a lapsed lease and the job runs again elsewhere.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vidmill.config import Settings
from vidmill.core.query import Format, Query
from vidmill.core.states import JobStatus
from vidmill.engine import ffmpeg as ffmpeg_bin
from vidmill.engine import probe as probing
from vidmill.engine.plan import decide_upscale, plan_output
from vidmill.errors import EncodeError, ProbeError, SourceError, StorageError, VidmillError
from vidmill.runner import ffmpeg as runner
from vidmill import destinations, sources
from vidmill.destinations import local as local_storage
from vidmill.store.jobs import Claimed, JobStore, LeaseLost

log = logging.getLogger("vidmill.pipeline")

SOFT_FAIL_WARNING = "Errors Ignored by 'allow_soft_fail'"


@dataclass
class JobContext:
    settings: Settings
    jobs: JobStore


class _Heartbeat:
    """Renews the lease while the job runs; on a lost lease it sets ``cancel``."""

    def __init__(self, ctx: JobContext, claimed: Claimed, cancel: threading.Event):
        self.ctx, self.claimed, self.cancel = ctx, claimed, cancel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{claimed.job_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        every = max(0.5, self.ctx.jobs.lease.total_seconds() / 3)
        while not self._stop.wait(every):
            try:
                self.ctx.jobs.heartbeat(self.claimed.job_id, self.claimed.owner)
            except LeaseLost:
                log.warning("lease of job %s lost; stopping it", self.claimed.job_id)
                self.cancel.set()
                return
            except Exception:  # a DB hiccup: try again at the next beat
                log.exception("heartbeat failed")


class _Progress:
    """Throttled writer of a job's percent (at most once a second)."""

    def __init__(self, ctx: JobContext, claimed: Claimed, steps: int):
        self.ctx, self.claimed, self.steps = ctx, claimed, max(1, steps)
        self.step = 0
        self._last = 0.0

    def __call__(self, percent: float) -> None:
        now = time.monotonic()
        overall = (self.step + percent / 100.0) / self.steps * 100.0
        if now - self._last < 1.0 and percent < 100.0:
            return
        self._last = now
        try:
            self.ctx.jobs.progress(self.claimed.job_id, self.claimed.owner, min(overall, 99.9))
        except LeaseLost:
            raise
        except Exception:
            log.exception("progress update failed")


def task_dir(settings: Settings, token: str) -> Path:
    return settings.work_dir / token


def ensure_source(ctx: JobContext, claimed: Claimed, query: Query, cancel: threading.Event | None = None) -> Path:
    """Download the task's source once per task (the other jobs of the task wait on the lock)."""
    tdir = task_dir(ctx.settings, claimed.task_token)
    tdir.mkdir(parents=True, exist_ok=True)
    src, ok = tdir / "source", tdir / "source.ok"
    with open(tdir / "source.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ok.exists():
            # bounded by settings.source_total_timeout; a cancel (shutdown, lost lease) stops it at once
            result = sources.fetch(query.source, src, settings=ctx.settings, cancel=cancel,
                                   project_id=claimed.project_id)
            ok.write_text(str(result.size))
            ctx.jobs.update_task_facts(claimed.task_id, source_size=result.size)
    return src


def run_job(ctx: JobContext, claimed: Claimed, cancel: threading.Event | None = None) -> None:
    """Run one claimed job to a terminal state. Never raises: an executor thread must outlive any job."""
    cancel = cancel or threading.Event()
    # One folder per attempt: an earlier owner that lost its lease may still be writing in its own.
    jdir = task_dir(ctx.settings, claimed.task_token) / f"job-{claimed.index}-a{claimed.attempt}"
    fmt: Format | None = None
    try:
        shutil.rmtree(jdir, ignore_errors=True)  # a retried job never reuses half-written outputs
        jdir.mkdir(parents=True, exist_ok=True)
        fmt = Format.model_validate(claimed.spec)
        with _Heartbeat(ctx, claimed, cancel):
            _run(ctx, claimed, fmt, jdir, cancel)
    except LeaseLost:
        log.warning("job %s: lease lost, leaving it to its new owner", claimed.job_id)
    except VidmillError as exc:
        if not cancel.is_set():  # else stopped on purpose (shutdown or lost lease): the job runs again
            _fail(ctx, claimed, fmt, _describe(exc))
    except Exception as exc:  # a bug must fail the job, not the worker
        log.exception("job %s crashed", claimed.job_id)
        _fail(ctx, claimed, fmt, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(jdir, ignore_errors=True)
        _cleanup_task_dir(ctx, claimed)


def _run(ctx: JobContext, claimed: Claimed, fmt: Format, jdir: Path, cancel: threading.Event) -> None:
    jobs, settings = ctx.jobs, ctx.settings
    query = Query.model_validate(claimed.query)
    src = ensure_source(ctx, claimed, query, cancel)
    probe_json = probing.probe(src)
    info = probing.media_info(probe_json)
    jobs.update_task_facts(claimed.task_id, duration=info.duration)

    if fmt.output == "metadata":
        out = jdir / "metadata.json"
        # served to clients as ffprobe's JSON; the work-dir path is not theirs to see
        public = dict(probe_json)
        public["format"] = {**public.get("format", {}), "filename": _source_name(query.source)}
        out.write_text(json.dumps(public, indent=2))
        jobs.set_status(claimed.job_id, claimed.owner, JobStatus.SAVING)
        _publish(ctx, claimed, [out], meta={}, duration=None, cancel=cancel)  # JSON: no bitrate or duration
        return

    decisions = decide_upscale(query, info)
    plan = plan_output(fmt, source=src, info=info, workdir=jdir, ffmpeg=ffmpeg_bin.ffmpeg_exe(),
                       index=claimed.index, upscale=bool(query.upscale), decision=decisions.get(claimed.index))
    warnings = [_warning(w, claimed.index) for w in plan.warnings]
    jobs.add_warnings(claimed.task_id, warnings)
    if plan.skipped:
        jobs.skip(claimed.job_id, claimed.owner, plan.skip_reason or "skipped")
        return
    jobs.set_status(claimed.job_id, claimed.owner, JobStatus.ENCODING, percent=0.0)
    progress = _Progress(ctx, claimed, len(plan.steps))
    for i, step in enumerate(plan.steps):
        progress.step = i
        if cancel.is_set():
            raise EncodeError("stopped")
        runner.run(step.argv, duration_s=step.duration_s, on_progress=progress,
                   timeout_s=settings.job_timeout_seconds, cancel=cancel, cwd=jdir)
    for path, data in (plan.write_files or {}).items():
        Path(path).write_bytes(data)
    missing = [p for p in plan.outputs if not Path(p).is_file() or Path(p).stat().st_size == 0]
    if missing:
        raise EncodeError(f"FFmpeg finished but produced no {missing[0].name}")
    jobs.set_status(claimed.job_id, claimed.owner, JobStatus.SAVING)
    main = Path(plan.outputs[0])
    out_probe = probing.probe(main)
    meta = probing.output_meta(out_probe)
    duration = float(out_probe.get("format", {}).get("duration") or 0) or None
    _publish(ctx, claimed, [Path(p) for p in plan.outputs], meta=meta, duration=duration, cancel=cancel)


def _publish(ctx: JobContext, claimed: Claimed, files: list[Path], *, meta: dict, duration: float | None,
             cancel: threading.Event | None = None) -> None:
    """Store the output's files (the first is its main file) at its destination(s), or in vidmill's own."""
    targets = [destinations.Target.from_dict(d) for d in claimed.spec.get("destination") or []]
    if targets:
        outputs = [destinations.OutputFile(p.name, p) for p in files]
        landed = destinations.put_all(outputs, targets, settings=ctx.settings, cancel=cancel)
        stored = {
            "files": [{"name": f.name, "size": f.size} for f in landed[0]],
            "storage": landed[0][0].storage["type"],
            # where the main file went, per destination: what status renders as url / storage
            "landed": [{"url": each[0].url, "storage": each[0].storage} for each in landed],
        }
        size = sum(f.size for f in landed[0])
    else:
        published = local_storage.publish(files, files_root=ctx.settings.files_dir)
        stored = {"files": [{"path": p.relative_path, "size": p.size} for p in published], "storage": "local"}
        size = sum(p.size for p in published)
    bitrate = round(size * 8 / 1000 / duration) if duration else None
    result = {**stored, "meta": meta, "size": size, "duration": duration, "bitrate": bitrate}
    ctx.jobs.complete(claimed.job_id, claimed.owner, result)


def _fail(ctx: JobContext, claimed: Claimed, fmt: Format | None, description: str) -> None:
    # FFmpeg names the files it failed on: users see the task's own names, never where the server keeps them
    description = description.replace(str(task_dir(ctx.settings, claimed.task_token)) + "/", "")
    description = description.replace(str(ctx.settings.data_dir), "<data>")
    try:
        if fmt is not None and getattr(fmt, "allow_soft_fail", False):
            ctx.jobs.add_warnings(claimed.task_id, [{
                "message": SOFT_FAIL_WARNING, "details": description, "tag": f"{_tag(fmt)}-{claimed.index}-0"}])
        ctx.jobs.fail(claimed.job_id, claimed.owner, description)
    except LeaseLost:
        pass
    except Exception:  # the store is down: the lease lapses and the job runs again, nothing is lost
        log.exception("could not record the failure of job %s", claimed.job_id)


def _describe(exc: VidmillError) -> str:
    if isinstance(exc, EncodeError):
        return f"FFmpeg failed: {exc.message}"
    if isinstance(exc, ProbeError):
        return f"source is not a readable media file: {exc.message}"
    if isinstance(exc, SourceError):
        return exc.message
    if isinstance(exc, StorageError):
        return f"saving outputs failed: {exc.message}"
    return exc.message


def _warning(w, index: int) -> dict:
    return {"message": w.message, "details": w.details, "tag": w.tag or f"video-{index}-0"}


def _tag(fmt: Format) -> str:
    return "video"


def _source_name(source: str | None) -> str:
    return (source or "").rsplit("/", 1)[-1].split("?", 1)[0] or "source"


def _cleanup_task_dir(ctx: JobContext, claimed: Claimed) -> None:
    try:
        view_status = ctx.jobs.task_status(claimed.task_id)
    except Exception:  # the store is unreachable: leave the files; the next run of the task cleans up
        return
    if view_status in ("completed", "error"):
        shutil.rmtree(task_dir(ctx.settings, claimed.task_token), ignore_errors=True)

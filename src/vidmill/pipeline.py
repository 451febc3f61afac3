"""Runs one claimed job end to end: fetch source → probe → plan → FFmpeg → publish.

Executors call :func:`run_job`; every state it reaches is written through the JobStore, so a
worker that dies mid-way leaves a lapsed lease and the job runs again elsewhere.
"""

from __future__ import annotations

import fcntl
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
from vidmill.engine.plan import Notice, decide_upscale, plan_output
from vidmill.errors import EncodeError, ProbeError, SourceError, StorageError, VidmillError
from vidmill.runner import ffmpeg as runner
from vidmill import destinations, sources
from vidmill.destinations import local as local_storage
from vidmill.store.jobs import Claimed, JobStore, LeaseLost

log = logging.getLogger("vidmill.pipeline")


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

    hardware = ffmpeg_bin.hardware_encoders(enabled=settings.nvenc != "off")
    plan = plan_job(query, fmt, claimed.index, src=src, info=info, probe_json=probe_json, workdir=jdir,
                    hardware=hardware)
    jobs.add_warnings(claimed.task_id, [n.to_dict() for n in plan.notices])
    if plan.skipped:
        jobs.skip(claimed.job_id, claimed.owner, plan.skip_reason or "skipped")
        return
    if plan.steps:
        jobs.set_status(claimed.job_id, claimed.owner, JobStatus.ENCODING, percent=0.0)
    try:
        notices = run_plan(plan, jdir, on_progress=_Progress(ctx, claimed, len(plan.steps)),
                           timeout_s=settings.job_timeout_seconds, cancel=cancel)
    except EncodeError as exc:
        if plan.hardware_encoder is None or cancel.is_set():
            raise
        # it passed the trial, yet failed here (driver gone, sessions exhausted): the software encoder runs
        ffmpeg_bin.hardware_failed(plan.hardware_encoder, exc.message)
        jobs.add_warnings(claimed.task_id, [Notice(
            "adjusted", f"{plan.hardware_encoder} failed at encode time ({exc.message}); encoded in software",
            f"format[{claimed.index}].video_codec", claimed.index).to_dict()])
        plan = plan_job(query, fmt, claimed.index, src=src, info=info, probe_json=probe_json, workdir=jdir)
        notices = run_plan(plan, jdir, on_progress=_Progress(ctx, claimed, len(plan.steps)),
                           timeout_s=settings.job_timeout_seconds, cancel=cancel)
    jobs.add_warnings(claimed.task_id, [n.to_dict() for n in notices])
    jobs.set_status(claimed.job_id, claimed.owner, JobStatus.SAVING)
    described = describe_outputs(plan, jdir)
    files = [f for d in described for f in d.files]
    _publish(ctx, claimed, files, base=jdir, described=described, main=plan.main, cancel=cancel)


def plan_job(query: Query, fmt: Format, index: int, *, src: Path, info, probe_json: dict, workdir: Path,
             hardware: dict[str, dict[str, frozenset[str]]] | None = None):
    """The plan of format ``index`` of ``query`` (the upscale rule is decided over the whole query)."""
    public = None
    if fmt.output == "metadata":
        # served to clients as ffprobe's JSON; the work-dir path is not theirs to see
        public = dict(probe_json)
        public["format"] = {**public.get("format", {}), "filename": _source_name(query.source)}
    decisions = decide_upscale(query, info)
    return plan_output(fmt, source=src, info=info, workdir=workdir, ffmpeg=ffmpeg_bin.ffmpeg_exe(),
                       index=index, upscale=bool(query.upscale), decision=decisions.get(index), probe_json=public,
                       hardware=hardware)


def run_plan(plan, workdir: Path, *, on_progress=None, timeout_s: float | None = None,
             cancel: threading.Event | None = None) -> list:
    """Run a plan's FFmpeg steps in ``workdir``, write its generated files, run its ``finish`` (manifests measured
    from the segments) and check every known output exists. Returns the notices ``finish`` added."""
    for path, data in (plan.write_files or {}).items():  # before the steps: FFmpeg may read them (key info)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    for i, step in enumerate(plan.steps):
        if hasattr(on_progress, "step"):
            on_progress.step = i
        if cancel is not None and cancel.is_set():
            raise EncodeError("stopped")
        runner.run(step.argv, duration_s=step.duration_s, on_progress=on_progress, timeout_s=timeout_s,
                   cancel=cancel, cwd=workdir)
    notices = plan.finish(workdir) if plan.finish is not None else []
    for out in plan.outputs:
        missing = [p for p in out.files if not Path(p).is_file() or Path(p).stat().st_size == 0]
        if missing:
            raise EncodeError(f"FFmpeg finished but produced no {missing[0].name}")
    return notices


@dataclass
class DescribedOutput:
    """A planned output after the run: its files and the facts probed from it (neutral vocabulary)."""

    format_index: int
    stream_index: int
    kind: str
    files: list[Path]
    facts: dict
    user_tag: str | None = None
    link: Path | None = None  # the file status points at (default: the first)


def describe_outputs(plan, workdir: Path) -> list[DescribedOutput]:
    """Collect every output's files and probe the one that describes it."""
    described = []
    for out in plan.outputs:
        facts = probing.output_facts(probing.probe(out.probe)) if out.probe is not None else {}
        facts |= getattr(out, "extra", None) or {}
        described.append(DescribedOutput(out.format_index, out.stream_index, out.kind, out.collect(workdir), facts,
                                          out.user_tag, getattr(out, "link", None)))
    return described


def _top(described: list[DescribedOutput]) -> DescribedOutput | None:
    """The output whose facts stand for the whole job: the largest video rendition, else the first."""
    videos = [d for d in described if "video_codec" in d.facts]
    if videos:
        return max(videos, key=lambda d: (d.facts.get("width") or 0) * (d.facts.get("height") or 0))
    return next((d for d in described if d.facts), described[0] if described else None)


def _publish(ctx: JobContext, claimed: Claimed, files: list[Path], *, base: Path,
             described: list[DescribedOutput], main: Path | None, cancel: threading.Event | None = None) -> None:
    """Store every file of the output (names relative to ``base``, the main file first) at its destination(s),
    or in vidmill's own storage, and record where each rendition's main file went."""
    if main in files:
        files = [main, *(f for f in files if f != main)]
    names = [f.relative_to(base).as_posix() for f in files]
    targets = [destinations.Target.from_dict(d) for d in claimed.spec.get("destination") or []]
    if targets:
        outputs = [destinations.OutputFile(n, p) for n, p in zip(names, files)]
        landed = destinations.put_all(outputs, targets, settings=ctx.settings, cancel=cancel)
        stored = {
            "files": [{"name": f.name, "size": f.size} for f in landed[0]],
            "storage": landed[0][0].storage["type"],
            # where the main file went, per destination: what status renders as url / storage
            "landed": [{"url": each[0].url, "storage": each[0].storage} for each in landed],
        }
        size = sum(f.size for f in landed[0])
        where = {n: {"url": f.url} for n, f in zip(names, landed[0])}
    else:
        published = local_storage.publish(files, files_root=ctx.settings.files_dir, names=names)
        stored = {"files": [{"path": p.relative_path, "size": p.size} for p in published], "storage": "local",
                  "main": published[0].relative_path}
        size = sum(p.size for p in published)
        where = {n: {"main": p.relative_path} for n, p in zip(names, published)}
    top = _top(described)
    facts = top.facts if top else {}
    duration = facts.get("duration") if top and top.kind != "metadata" else None
    bitrate = round(size * 8 / 1000 / duration) if duration else None
    outputs = []
    for d in described:
        shown = d.link or (d.files[0] if d.files else None)
        first = shown.relative_to(base).as_posix() if shown else None
        outputs.append({"stream": d.stream_index, "kind": d.kind, "user_tag": d.user_tag, "facts": d.facts,
                        **where.get(first, {})})
    result = {**stored, "facts": facts, "outputs": outputs, "size": size, "duration": duration, "bitrate": bitrate}
    ctx.jobs.complete(claimed.job_id, claimed.owner, result)


def _fail(ctx: JobContext, claimed: Claimed, fmt: Format | None, description: str) -> None:
    # FFmpeg names the files it failed on: users see the task's own names, never where the server keeps them
    description = description.replace(str(task_dir(ctx.settings, claimed.task_token)) + "/", "")
    description = description.replace(str(ctx.settings.data_dir), "<data>")
    try:
        if fmt is not None and getattr(fmt, "allow_soft_fail", False):
            ctx.jobs.add_warnings(claimed.task_id, [Notice("soft_fail", description, None, claimed.index).to_dict()])
        ctx.jobs.fail(claimed.job_id, claimed.owner, description)
    except LeaseLost:
        pass
    except Exception:  # the store is down: the lease lapses and the job runs again, nothing is lost
        log.exception("could not record the failure of job %s", claimed.job_id)


def _describe(exc: VidmillError) -> str:
    if isinstance(exc, EncodeError):
        return f"FFmpeg failed: {exc.message}"
    if isinstance(exc, ProbeError):  # its message names the file: "source is not readable media: ..."
        return exc.message if exc.message.startswith("source") else f"source is not a readable media file: {exc.message}"
    if isinstance(exc, SourceError):
        return exc.message
    if isinstance(exc, StorageError):
        return f"saving outputs failed: {exc.message}"
    return exc.message


def _source_name(source: str | None) -> str:
    return (source or "").rsplit("/", 1)[-1].split("?", 1)[0] or "source"


def _cleanup_task_dir(ctx: JobContext, claimed: Claimed) -> None:
    try:
        view_status = ctx.jobs.task_status(claimed.task_id)
    except Exception:  # the store is unreachable: leave the files; the next run of the task cleans up
        return
    if view_status in ("completed", "error"):
        shutil.rmtree(task_dir(ctx.settings, claimed.task_token), ignore_errors=True)

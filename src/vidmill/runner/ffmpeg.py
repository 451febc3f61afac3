"""Run one FFmpeg command: progress out, cancel and timeout in, a typed error on a bad exit.

The argv is a list handed straight to the kernel (never a shell). The runner adds, right after argv[0]:
``-hide_banner -nostats -progress pipe:1 -loglevel +level`` (the ``+level`` flag tags each stderr line
``[error]``/``[info]``... without changing the level, which lets us pick the line that names the cause),
and ``-n`` when the argv says neither ``-y`` nor ``-n`` (FFmpeg would otherwise wait on stdin asking
whether to overwrite). stdin stays a pipe, reserved for the ``q`` that stops FFmpeg cleanly; stdout is
reserved for progress, so an argv must not write media to ``pipe:1``.

FFmpeg runs in its own session (our terminal's signals are not its) and with PR_SET_PDEATHSIG=SIGKILL, so
it dies with the thread that started it, even under ``kill -9`` of the server.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vidmill.errors import EncodeError

log = logging.getLogger("vidmill.runner")

TAIL_LINES = 50
PROGRESS_INTERVAL_S = 0.5  # at most ~2 progress calls a second, plus the final one
STOP_GRACE_S = 5.0  # after "q", before SIGTERM; and again before SIGKILL
_POLL_S = 0.1
_PR_SET_PDEATHSIG = 1

_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


@dataclass(frozen=True)
class RunResult:
    returncode: int
    elapsed: float  # seconds
    stderr_tail: list[str] = field(default_factory=list)  # last TAIL_LINES lines, as FFmpeg printed them


def run(
    argv: list[str],
    *,
    duration_s: float | None,
    on_progress: Callable[[float], None] | None = None,
    timeout_s: float | None = None,
    cancel: threading.Event | None = None,
    cwd: Path | None = None,
) -> RunResult:
    """Run ``argv`` (argv[0] is the FFmpeg binary) to the end.

    ``on_progress(percent)`` gets 0..100 from FFmpeg's ``out_time`` over ``duration_s`` (the output's
    expected length; None: only the final 100), non-decreasing, and 100.0 once on success. It is called
    from a reader thread. Raises EncodeError on a non-zero exit (message: FFmpeg's line naming the
    cause), on timeout ("FFmpeg timed out after N s") and when ``cancel`` was set ("FFmpeg was
    cancelled"): a stopped encode is never a success, even though ``q`` makes FFmpeg exit 0. An exception
    raised by ``on_progress`` (the pipeline's ``LeaseLost``: the job is someone else's now) stops FFmpeg
    and is re-raised here.
    """
    if not argv:
        raise ValueError("empty argv")
    full = _with_runner_options(argv)
    log.debug("ffmpeg argv: %r", full)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    progress = _Progress(duration_s, on_progress)
    started = time.monotonic()
    parent = os.getpid()
    proc = subprocess.Popen(
        full,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=(lambda: _die_with_parent(parent)) if _LIBC is not None else None,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    readers = [
        threading.Thread(target=_read_lines, args=(proc.stdout, progress.feed), daemon=True,
                         name="ffmpeg-progress"),
        threading.Thread(target=_read_lines, args=(proc.stderr, tail.append), daemon=True,
                         name="ffmpeg-stderr"),
    ]
    for t in readers:
        t.start()
    stopped: str | None = None
    try:
        while True:
            try:
                proc.wait(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            if progress.error is not None:
                stopped = "progress"
            elif cancel is not None and cancel.is_set():
                stopped = "cancelled"
            elif timeout_s is not None and time.monotonic() - started > timeout_s:
                stopped = "timeout"
            if stopped:
                _stop(proc)
                break
    except BaseException:  # KeyboardInterrupt, or an error in this thread: FFmpeg must not outlive us
        _stop(proc)
        raise
    finally:
        for t in readers:
            t.join(timeout=STOP_GRACE_S)
        if not proc.stdin.closed:
            proc.stdin.close()
    elapsed = time.monotonic() - started
    rc = proc.returncode
    lines = list(tail)
    log.debug("ffmpeg exited %s after %.2f s", rc, elapsed)
    if progress.error is not None:
        raise progress.error
    if stopped == "timeout":
        raise EncodeError(f"FFmpeg timed out after {timeout_s:g} s", argv=full, returncode=rc)
    if stopped == "cancelled":
        raise EncodeError("FFmpeg was cancelled", argv=full, returncode=rc)
    if rc != 0:
        raise EncodeError(meaningful_line(lines, rc), argv=full, returncode=rc)
    refused = next((t for _, t in map(_parse, lines) if _NOT_OVERWRITTEN.search(t)), None)
    if refused:  # FFmpeg 9 exits 0 when it declines to overwrite: no output is not a success
        raise EncodeError(refused.rstrip("."), argv=full, returncode=rc)
    progress.finish()
    if progress.error is not None:
        raise progress.error
    return RunResult(returncode=rc, elapsed=elapsed, stderr_tail=lines)


def _with_runner_options(argv: list[str]) -> list[str]:
    extra = ["-hide_banner", "-nostats", "-progress", "pipe:1", "-loglevel", "+level"]
    if "-y" not in argv[1:] and "-n" not in argv[1:]:
        extra.append("-n")
    return [argv[0], *extra, *argv[1:]]


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGKILL when the parent (thread) dies; covers a parent already gone."""
    assert _LIBC is not None
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """``q`` first (FFmpeg finalises its outputs), then SIGTERM, then SIGKILL."""
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"q")
        proc.stdin.flush()
        proc.stdin.close()
    except (OSError, ValueError):  # already exited and closed its end
        pass
    for step in (None, proc.terminate, proc.kill):
        if step is not None:
            try:
                step()
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def _read_lines(stream: IO[bytes], sink: Callable[[str], None]) -> None:
    try:
        for raw in iter(stream.readline, b""):
            for line in raw.decode("utf-8", "replace").replace("\r", "\n").split("\n"):
                line = line.rstrip()
                if line:
                    sink(line)
    except Exception:  # a sink that raises must not leave the pipe unread (FFmpeg would block on it)
        log.exception("ffmpeg output reader failed")
        for _ in iter(stream.readline, b""):
            pass
    finally:
        stream.close()


class _Progress:
    """Turns ``-progress`` key=value blocks into throttled, non-decreasing percentages."""

    def __init__(self, duration_s: float | None, callback: Callable[[float], None] | None):
        self.duration_s = duration_s if duration_s and duration_s > 0 else None
        self.callback = callback
        self.best = 0.0
        self.last_call = float("-inf")
        self.finished = False
        self.error: BaseException | None = None  # what the callback raised: run() stops FFmpeg and re-raises it
        self._lock = threading.Lock()

    def feed(self, line: str) -> None:
        key, _, value = line.partition("=")
        # out_time_ms is microseconds too (a historical misnomer); prefer out_time_us where present
        if key not in ("out_time_us", "out_time_ms") or self.duration_s is None:
            return
        try:
            us = int(value)
        except ValueError:  # "N/A" before the first frame
            return
        pct = min(100.0, max(0.0, us / 1e6 / self.duration_s * 100.0))
        now = time.monotonic()
        if pct > self.best and now - self.last_call >= PROGRESS_INTERVAL_S:
            self._emit(pct, now)

    def finish(self) -> None:
        self._emit(100.0, time.monotonic(), final=True)

    def _emit(self, pct: float, now: float, final: bool = False) -> None:
        with self._lock:
            # 100 is said once, by finish(): an out_time at the end is not yet a finished file
            if self.error is not None or self.finished or pct < self.best or (pct >= 100.0 and not final):
                return
            self.best, self.last_call, self.finished = pct, now, final
        if self.callback is not None:
            try:
                self.callback(pct)
            except Exception as exc:  # called from a reader thread: hand it to run(), which stops FFmpeg
                if self.error is None:
                    self.error = exc


# --- choosing the line that names the cause --------------------------------------------------------

_CONTEXT = re.compile(r"^(?:\[[^\]]+ @ 0x[0-9a-fA-F]+\] ?)+")  # "[vost#0:0/libx264 @ 0x55..] [enc:..] "
_LEVEL = re.compile(r"^\[(panic|fatal|error|warning|info|verbose|debug|trace)\] ?")
_LIB_LEVEL = re.compile(r"^(x264|x265|Svt|SVT-AV1|aom|vpx)\s?\[(error|warning|info)\]:?\s*", re.I)
_SEVERE = {"panic", "fatal", "error"}
_NOT_OVERWRITTEN = re.compile(r"^File '.*' already exists\. Exiting|Not overwriting - exiting")
_NOISE = re.compile(r"^(frame=|size=|Press \[q\]|\[q\] command received|Conversion failed!|Exiting normally)")
# Consequences FFmpeg prints after the cause: skipped in favour of the line before them.
_GENERIC = re.compile(
    r"^(Error opening (input|output) file(s:| )"
    r"|Error while "
    r"|Error splitting the argument list"
    r"|Error parsing (a filter description|filterchain|global options)"
    r"|Error (initializing|reinitializing|configuring) (the )?(filters?|filtergraph|output stream)"
    r"|Error setting (preset/tune|option \S+ to value)"
    r"|Error applying (encoder|decoder) options"
    r"|Error selecting an encoder"
    r"|Error sending frames to consumers"
    r"|Error submitting "
    r"|Error marking filters as finished"
    r"|Error during demuxing"
    r"|Task finished with error code"
    r"|Terminating thread with return code"
    r"|Could not open encoder before EOF"
    r"|Nothing was written into output file"
    r"|Failed to set value .* for option"
    r"|Error writing trailer of)",
)


def _parse(line: str) -> tuple[str | None, str]:
    """(level or None, text without context and level tags)."""
    text = _CONTEXT.sub("", line)
    m = _LEVEL.match(text) or _LIB_LEVEL.match(text)
    level = None
    if m:
        level = m.group(m.lastindex or 1).lower()
        text = text[m.end():]
    return level, text.strip()


def meaningful_line(lines: Iterable[str], returncode: int | None = None) -> str:
    """The stderr line that names why FFmpeg failed, without its ``[ctx @ 0x..] [error]`` tags.

    Preference: the last error-level line that is not a generic consequence ("Conversion failed!",
    "Error while ...", "Error opening output files: ..."); with no level tags (an argv that resets
    ``-loglevel``), the last non-generic line; then the last generic error; then the last line.
    """
    parsed = [_parse(raw) for raw in lines]
    parsed = [(lvl, text) for lvl, text in parsed if text and not _NOISE.match(text)]
    tagged = any(lvl for lvl, _ in parsed)
    candidates = [
        [t for lvl, t in parsed if lvl in _SEVERE and not _GENERIC.match(t)],
        [] if tagged else [t for lvl, t in parsed if not _GENERIC.match(t)],
        [t for lvl, t in parsed if lvl in _SEVERE or not tagged],
        [t for _, t in parsed],
    ]
    for group in candidates:
        if group:
            return group[-1].rstrip(".")
    if returncode is not None and returncode < 0:
        try:
            return f"FFmpeg was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            pass
    return f"FFmpeg exited with code {returncode}"

"""Where the FFmpeg binary is and what it can do.

The engine runs the static FFmpeg that ships with ``imageio-ffmpeg`` (no ffprobe in it: see ``probe.py``).
Every answer is cached for the life of the process: the binary does not change under a running server.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
from functools import cache
from pathlib import Path

import imageio_ffmpeg

log = logging.getLogger("vidmill.engine")

# "ffmpeg version 9.0.2-17-g2a571b6068-20260930 Copyright ..." (static builds append git describe + date).
_VERSION_RE = re.compile(r"^ffmpeg version n?(\d+(?:\.\d+)+|\S+)", re.MULTILINE)
# "-encoders" rows look like " V....D libx264              libx264 H.264 / AVC ..."; flags are 6 chars.
_ENCODER_RE = re.compile(r"^ ([VASFXBD.]{6}) (\S+)", re.MULTILINE)


@cache
def ffmpeg_exe() -> str:
    """Absolute, symlink-free path of the FFmpeg binary the engine runs."""
    return str(Path(imageio_ffmpeg.get_ffmpeg_exe()).resolve())


def _run_info(*args: str) -> str:
    proc = subprocess.run(
        [ffmpeg_exe(), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=30,
        check=True,
    )
    return proc.stdout


@cache
def ffmpeg_version() -> str:
    """The release FFmpeg reports, dotted (``"9.0.2"``); a bare git build gives its describe string."""
    out = _run_info("-hide_banner", "-version")
    match = _VERSION_RE.search(out)
    if not match:
        raise RuntimeError(f"cannot parse the FFmpeg version from {out[:80]!r}")
    return match.group(1)


@cache
def _encoders() -> tuple[str, ...]:
    out = _run_info("-hide_banner", "-encoders")
    # The legend above the "------" rule uses the same layout ("V..... = Video"): skip it.
    _, _, table = out.partition("------")
    return tuple(m.group(2) for m in _ENCODER_RE.finditer(table))


def encoders() -> list[str]:
    """Names of every encoder this FFmpeg was built with (``libx264``, ``aac``, ...)."""
    return list(_encoders())


def has_encoder(name: str) -> bool:
    return name in _encoders()


@cache
def nvenc_status() -> tuple[bool, str]:
    """Whether ``h264_nvenc`` really encodes on this host: being built in is not enough (it needs an NVIDIA
    GPU and driver at run time), so a one-frame trial encode decides. (works, why-not or "ok")."""
    if not has_encoder("h264_nvenc"):
        return False, "this FFmpeg has no h264_nvenc encoder"
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi",
             "-i", "color=c=black:s=256x144:r=25:d=0.2", "-frames:v", "1", "-c:v", "h264_nvenc", "-f", "null", "-"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"trial encode failed: {type(exc).__name__}"
    if proc.returncode == 0:
        return True, "ok"
    lines = [re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\] ", "", line.strip()) for line in proc.stderr.splitlines()
             if line.strip()]
    return False, (lines[0] if lines else f"trial encode exited with {proc.returncode}")[:200]


# ``-h encoder=NAME``: "  -multipass   <int> ..." option rows, each followed by "     fullres  2 ..." value rows
_OPTION_RE = re.compile(r"^  (-[A-Za-z0-9_:-]+)\s")
_VALUE_RE = re.compile(r"^ {4,}([A-Za-z0-9_]+)\s")


@cache
def encoder_options(name: str) -> dict[str, frozenset[str]]:
    """The options an encoder of this build lists, each with its named values (``{"-preset": {"p4", "slow",
    ...}, "-multipass": {...}}``): what differs between FFmpeg releases (h264_nvenc's presets came and went)."""
    try:
        text = _run_info("-hide_banner", "-h", f"encoder={name}")
    except (OSError, subprocess.SubprocessError):
        return {}
    options: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        if m := _OPTION_RE.match(line):
            current = options.setdefault(m.group(1), set())
        elif current is not None and (m := _VALUE_RE.match(line)):
            current.add(m.group(1))
    return {k: frozenset(v) for k, v in options.items()}


_hw_lock = threading.Lock()
_hw_failed: dict[str, str] = {}  # hardware encoders that failed at encode time in this process: name -> why
_hw_logged = False


def hardware_encoders(enabled: bool = True) -> dict[str, dict[str, frozenset[str]]]:
    """The hardware encoders this process may run (name -> :func:`encoder_options`): those that passed the trial
    encode (cached for the process) and have not failed at encode time since. ``enabled`` False (the
    ``VIDMILL_NVENC=off`` setting): none. The outcome is logged once per process."""
    global _hw_logged
    if not enabled:
        return {}
    works, why = nvenc_status()
    with _hw_lock:
        if not _hw_logged:
            _hw_logged = True
            if works:
                log.info("h264_nvenc passed the trial encode: formats asking for hardware encode with it")
            else:
                log.info("h264_nvenc not used (%s): libx264 encodes every H.264 output", why)
        if not works or "h264_nvenc" in _hw_failed:
            return {}
    return {"h264_nvenc": encoder_options("h264_nvenc")}


def hardware_failed(name: str, why: str) -> None:
    """``name`` passed the trial but failed at encode time: this process stops using it."""
    with _hw_lock:
        _hw_failed[name] = why
    log.warning("%s failed at encode time (%s): this process encodes with software from now on", name, why)

"""Where the FFmpeg binary is and what it can do.

The engine runs the static FFmpeg that ships with ``imageio-ffmpeg`` (no ffprobe in it: see ``probe.py``).
Every answer is cached for the life of the process: the binary does not change under a running server.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import imageio_ffmpeg

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

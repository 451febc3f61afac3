"""h264_nvenc is detected by a trial encode on this host, never assumed from the FFmpeg build."""

from __future__ import annotations

import subprocess

from vidmill.engine import ffmpeg


def test_nvenc_status_matches_a_real_encode(tmp_path):
    ffmpeg.nvenc_status.cache_clear()
    works, why = ffmpeg.nvenc_status()
    out = tmp_path / "n.mp4"
    proc = subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                           "testsrc=s=320x240:d=0.5", "-c:v", "h264_nvenc", str(out)], capture_output=True)
    assert works == (proc.returncode == 0 and out.stat().st_size > 0), (works, why, proc.stderr[-300:])
    if not works:
        assert why and "0x" not in why  # a reason fit for `vidmill doctor`, without pointer noise


def test_not_built_is_not_working(monkeypatch):
    ffmpeg.nvenc_status.cache_clear()
    monkeypatch.setattr(ffmpeg, "has_encoder", lambda name: False)
    try:
        assert ffmpeg.nvenc_status() == (False, "this FFmpeg has no h264_nvenc encoder")
    finally:
        ffmpeg.nvenc_status.cache_clear()

"""Small ladders made with the bundled FFmpeg, to prove the harness before (and apart from) vidmill.

Two H.264 rungs (640x360, 384x216) with keyframes every second (1 s segments), no scene cuts and no
B-frames (with B-frames hls.js now and then seeks over a 0.18 s hole at the start of the TS ladder), plus one AAC stereo
rendition in its own group, 5.2 s long; encoded once, then packaged with ``-c copy`` three ways.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg

SOURCE = "bbb_720p_5s_aac51.mp4"
HEIGHTS = (360, 216)
VAR_STREAM_MAP = "v:0,agroup:aud,name:v360 v:1,agroup:aud,name:v216 a:0,agroup:aud,name:audio,default:yes"


def _ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *args], check=True)


def make_ladders(media: Path, out: Path) -> dict[str, Path]:
    """Returns the manifest of each ladder: ``hls_ts``, ``hls_fmp4``, ``dash``."""
    out.mkdir(parents=True, exist_ok=True)
    rungs = out / "rungs.mp4"
    _ffmpeg("-i", str(media / SOURCE),
            "-filter_complex", "[0:v]split=2[a][b];[a]scale=640:360[v0];[b]scale=384:216[v1]",
            "-map", "[v0]", "-map", "[v1]", "-map", "0:a",
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-pix_fmt", "yuv420p",
            "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "0",
            "-b:v:0", "800k", "-b:v:1", "300k", "-c:a", "aac", "-ac", "2", "-b:a", "96k", str(rungs))
    maps = ["-map", "0:v:0", "-map", "0:v:1", "-map", "0:a", "-c", "copy"]
    manifests = {}
    for kind, seg_type, ext in (("hls_ts", "mpegts", "ts"), ("hls_fmp4", "fmp4", "m4s")):
        d = out / kind
        d.mkdir()
        # -muxdelay 0: TS timestamps start where the MP4's do (else hls.js seeks over a 0.18 s hole at the start)
        _ffmpeg("-i", str(rungs), *maps, "-muxdelay", "0", "-muxpreload", "0", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
                "-hls_segment_type", seg_type, "-hls_fmp4_init_filename", "init.mp4",
                "-master_pl_name", "master.m3u8", "-var_stream_map", VAR_STREAM_MAP,
                "-hls_segment_filename", str(d / f"%v_%03d.{ext}"), str(d / "%v.m3u8"))
        manifests[kind] = d / "master.m3u8"
    d = out / "dash"
    d.mkdir()
    _ffmpeg("-i", str(rungs), *maps, "-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0",
            "-adaptation_sets", "id=0,streams=v id=1,streams=a", str(d / "manifest.mpd"))
    manifests["dash"] = d / "manifest.mpd"
    return manifests

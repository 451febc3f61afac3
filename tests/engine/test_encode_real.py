"""Plans run through the real FFmpeg on real media; outputs checked by decoding them with PyAV.

Every encode is short (about 1 s of media) and small so the whole file stays well under a minute.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

from vidmill.core.query import Format
from vidmill.engine.ffmpeg import ffmpeg_exe
from vidmill.engine.plan import DEMUXERS, Plan, plan_output
from vidmill.engine.probe import media_info, probe
from vidmill.errors import ProbeError

pytestmark = pytest.mark.integration


def make(argv_tail: list[str], out: Path) -> Path:
    """Derive a test source with FFmpeg (fast settings; these are inputs, not what is under test)."""
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *argv_tail, str(out)], check=True,
                   stdin=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="session")
def derived(tmp_path_factory, media: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("derived")
    bbb = media / "bbb_720p_5s_aac51.mp4"
    small = make(["-t", "1.2", "-i", str(bbb), "-vf", "scale=640:360", "-c:v", "libx264", "-preset", "ultrafast",
                  "-c:a", "copy"], d / "small.mp4")
    return {
        "small": small,
        "portrait": make(["-i", str(small), "-vf", "transpose=1", "-c:v", "libx264", "-preset", "ultrafast",
                          "-an"], d / "portrait.mp4"),
        # coded 640x360 with a 90-degree display matrix: players (and FFmpeg's autorotate) show 360x640
        "rotated": make(["-display_rotation", "90", "-i", str(small), "-c", "copy"], d / "rotated.mp4"),
        # two frames woven into one: combing on every moving edge, 12.5 fps, flagged interlaced
        "interlaced": make(["-t", "2", "-i", str(bbb), "-vf", "scale=320:180,tinterlace=interleave_top",
                            "-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ildct+ilme", "-an"],
                           d / "interlaced.mp4"),
    }


def encode(tmp_path: Path, source: Path, index: int = 0, **fields) -> tuple[Plan, Path]:
    fmt = Format.model_validate(fields)
    info = media_info(probe(source))
    plan = plan_output(fmt, source=source, info=info, workdir=tmp_path, ffmpeg=ffmpeg_exe(), index=index,
                       upscale=False)
    for step in plan.steps:
        proc = subprocess.run(step.argv, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"{step.label}: {proc.stderr[-2000:]}"
    assert len(plan.outputs) == 1 and plan.outputs[0].files[0].stat().st_size > 0
    return plan, plan.outputs[0].files[0]


def video(path: Path) -> dict:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        cc = s.codec_context
        packets = sorted((p for p in c.demux(s) if p.pts is not None), key=lambda p: p.pts)
        keys = [i for i, p in enumerate(packets) if p.is_keyframe]
        return {"codec": cc.name, "size": (s.width, s.height), "pix_fmt": cc.pix_fmt, "profile": s.profile,
                "fps": s.average_rate, "sar": s.sample_aspect_ratio, "tag": cc.codec_tag, "keys": keys,
                "frames": len(packets), "duration": float(c.duration / 1_000_000) if c.duration else None}


def audio(path: Path) -> tuple[str, int, int] | None:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        s = c.streams.audio[0]
        return s.codec_context.name, s.sample_rate, s.channels


def square(sar) -> bool:
    return sar in (None, 0, Fraction(1, 1))


def luma_rows(path: Path, frame_index: int = 3) -> list[bytes]:
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == frame_index:
                plane = frame.planes[0]
                data = bytes(plane)
                return [data[y * plane.line_size:y * plane.line_size + plane.width] for y in range(plane.height)]
    raise AssertionError("too few frames")


def idet(path: Path) -> dict[str, int]:
    """FFmpeg's interlace detector over the whole file: frames judged TFF, BFF, Progressive, Undetermined."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-vf", "idet", "-f", "null",
                           "-"], capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
    line = [ln for ln in proc.stderr.splitlines() if "Single frame detection" in ln][-1]
    found = re.findall(r"(TFF|BFF|Progressive|Undetermined):\s*(\d+)", line)
    return {k: int(v) for k, v in found}


# --- geometry -------------------------------------------------------------------------------------------


def test_mp4_size_keyframes_profile(tmp_path, media):
    plan, out = encode(tmp_path, media / "bbb_720p_5s_aac51.mp4", output="mp4", size="320x240", duration=1,
                       keyframe="10")
    v = video(out)
    assert (v["codec"], v["size"], v["pix_fmt"], v["profile"]) == ("h264", (320, 240), "yuv420p", "Main")
    assert v["fps"] == 25 and square(v["sar"]) and v["tag"] == "avc1"
    assert v["keys"] == [0, 10, 20] and v["frames"] == 25
    assert plan.notices == []


def test_resolution_on_horizontal_source(tmp_path, media):
    _, out = encode(tmp_path, media / "bbb_720p_5s_aac51.mp4", output="mp4", resolution=360, duration=0.4)
    assert video(out)["size"] == (640, 360)


def test_resolution_on_portrait_source_is_width(tmp_path, derived):
    _, out = encode(tmp_path, derived["portrait"], output="mp4", resolution=180, duration=0.5)
    assert video(out)["size"] == (180, 320)


def test_source_display_rotation_is_honoured(tmp_path, derived):
    _, out = encode(tmp_path, derived["rotated"], output="mp4", resolution=180, duration=0.5)
    assert video(out)["size"] == (180, 320)


def test_rotate_90(tmp_path, derived):
    _, out = encode(tmp_path, derived["small"], output="mp4", rotate=90, resolution=180, duration=0.5)
    assert video(out)["size"] == (180, 320)


@pytest.mark.parametrize("mode", ["crop", "scale"])
def test_aspect_ratio_4_3(tmp_path, derived, mode):
    _, out = encode(tmp_path, derived["small"], output="mp4", aspect_ratio="4:3", resize_mode=mode, resolution=240,
                    duration=0.5)
    v = video(out)
    assert v["size"] == (320, 240) and square(v["sar"])


def test_crop_mode_adds_black_bars_when_the_output_is_wider(tmp_path, media):
    _, out = encode(tmp_path, media / "anim_256_mjpeg.mov", output="mp4", aspect_ratio="16:9", resize_mode="crop",
                    duration=0.3)
    assert video(out)["size"] == (456, 256)
    rows = luma_rows(out, 0)
    left, middle = [r[:90] for r in rows], [r[150:300] for r in rows]
    assert max(max(r) for r in left) <= 20  # pillar-box: (456 - 256) / 2 = 100 px of black on each side
    assert max(max(r) for r in middle) > 40


def test_sar_source_becomes_square_pixels(tmp_path, media):
    _, out = encode(tmp_path, media / "carphone_qcif_sar.mp4", output="mp4", duration=0.5)
    v = video(out)
    assert v["size"] == (192, 144) and square(v["sar"])


def test_odd_height_becomes_even(tmp_path, media):
    _, out = encode(tmp_path, media / "city_cc0_720x405_mpeg2.mpg", output="mp4", duration=0.3)
    v = video(out)
    assert v["size"] == (720, 404) and audio(out) is None


def test_framerate_and_keyframes_in_seconds(tmp_path, derived):
    _, out = encode(tmp_path, derived["small"], output="mp4", framerate="15", keyframe="0.4s", size="320x180",
                    duration=1)
    v = video(out)
    assert v["fps"] == 15 and v["frames"] == 15 and v["keys"] == [0, 6, 12]


def test_deinterlace(tmp_path, derived):
    src = derived["interlaced"]
    with av.open(str(src)) as c:
        assert next(c.decode(video=0)).interlaced_frame
    _, woven = encode(tmp_path, src, index=0, output="mp4")
    _, clean = encode(tmp_path, src, index=1, output="mp4", deinterlace=1)
    v = video(clean)
    assert v["fps"] == Fraction(25, 2) and v["frames"] == video(woven)["frames"]  # send_frame: rate kept
    before, after = idet(woven), idet(clean)
    assert before["TFF"] >= 0.8 * v["frames"]  # the combing survives a plain re-encode...
    assert after["TFF"] + after["BFF"] <= 0.3 * v["frames"] < after["Progressive"]  # ...but not bwdif


# --- codecs ---------------------------------------------------------------------------------------------


def test_profile_and_pix_format(tmp_path, derived):
    _, out = encode(tmp_path, derived["small"], output="mp4", pix_format="yuv422p", profile="high", size="320x180",
                    duration=0.5, video_codec_parameters={"level": 31})
    v = video(out)
    assert (v["pix_fmt"], v["profile"]) == ("yuv422p", "High 4:2:2")


def test_libx265_mp4_hvc1(tmp_path, derived):
    _, out = encode(tmp_path, derived["small"], output="mp4", video_codec="libx265", size="320x180", duration=0.5)
    v = video(out)
    assert (v["codec"], v["tag"], v["size"], v["profile"]) == ("hevc", "hvc1", (320, 180), "Main")


@pytest.mark.parametrize(("profile", "pix_format", "expected"), [
    pytest.param("main444-10", "yuv444p", "Rext", id="main444-10"),  # was refused with a false warning
    pytest.param("main", "yuv444p", "Rext", id="main-upgraded-for-444"),  # main alone makes x265 fail
])
def test_libx265_profiles_from_the_table(tmp_path, derived, profile, pix_format, expected):
    _, out = encode(tmp_path, derived["small"], output="mp4", video_codec="libx265", size="320x180",
                       duration=0.3, profile=profile, pix_format=pix_format)
    v = video(out)
    assert (v["codec"], v["pix_fmt"], v["profile"]) == ("hevc", pix_format, expected)


def test_webm_vp9_opus(tmp_path, derived):
    _, out = encode(tmp_path, derived["small"], output="webm", size="320x180", duration=0.5)
    v = video(out)
    assert (v["codec"], v["size"], v["pix_fmt"]) == ("vp9", (320, 180), "yuv420p")
    assert audio(out) == ("opus", 48000, 2)


def test_webm_vp8_vorbis(tmp_path, derived):
    _, out = encode(tmp_path, derived["small"], output="webm", video_codec="libvpx", audio_codec="libvorbis",
                    size="320x180", duration=0.5)
    assert video(out)["codec"] == "vp8" and audio(out) == ("vorbis", 44100, 2)


def test_two_pass_with_bitrate(tmp_path, derived):
    plan, out = encode(tmp_path, derived["small"], output="mp4", two_pass=1, bitrate=300, size="320x180",
                       duration=1, audio_mute=1)
    assert [s.label for s in plan.steps] == ["pass 1 of 2", "pass 2 of 2"]
    assert (tmp_path / "pass-0-0.log").is_file()
    v = video(out)
    assert v["codec"] == "h264" and v["frames"] == 25
    with av.open(str(out)) as c:
        kbps = c.streams.video[0].codec_context.bit_rate / 1000
    assert 150 < kbps < 450


def test_x264_advanced_parameters_are_accepted(tmp_path, derived):
    plan, out = encode(tmp_path, derived["small"], output="mp4", size="320x180", duration=0.5, bitrate=400,
                       video_codec_parameters={
                           "coder": 0, "flags2": "+bpyramid+wpred+mixed_refs+dct8x8-fastpskip+aud",
                           "partitions": "+partp8x8+partb8x8+parti4x4", "directpred": 3, "me_method": "umh",
                           "subq": 7, "trellis": 1, "refs": 3, "cmp": "chroma", "me_range": 16, "sc_threshold": 40,
                           "i_qfactor": 0.71, "b_strategy": 1, "qcomp": 0.6, "qmin": 10, "qmax": 51, "qdiff": 4,
                           "max_rate": 0.6, "bufsize": 1.2, "sws_flags": "lanczos", "preset": "fast",
                           "flags": "+loop", "rc_lookahead": 20, "vprofile": "high", "level": 31})
    assert plan.notices == []
    assert video(out)["profile"] == "High"  # coder 0 (CAVLC) is legal in High


# --- audio ----------------------------------------------------------------------------------------------


def test_surround_source_downmixed_to_stereo_44100(tmp_path, media):
    _, out = encode(tmp_path, media / "bbb_720p_5s_aac51.mp4", output="mp4", size="320x180", duration=0.5)
    assert audio(out) == ("aac", 44100, 2)


def test_audio_mute_is_silent(tmp_path, derived):
    _, out = encode(tmp_path, derived["small"], output="mp4", audio_mute=1, size="320x180", duration=1)
    assert audio(out) == ("aac", 44100, 2)
    with av.open(str(out)) as c:
        peak = max(max(abs(x) for x in bytes(f.planes[0])) for f in c.decode(audio=0))
        assert peak == 0
        assert abs(c.streams.audio[0].duration * c.streams.audio[0].time_base - 1) < 0.1


def test_start_time_and_duration(tmp_path, media):
    plan, out = encode(tmp_path, media / "bbb_720p_5s_aac51.mp4", output="mp4", size="320x180", start_time=2,
                       duration=1)
    assert plan.steps[0].duration_s == 1.0
    v = video(out)
    assert v["frames"] == 25 and abs(v["duration"] - 1.0) < 0.1


# --- the source input: local files only, the demuxer the probe saw -------------------------------------

PIN_LEN = 4  # "-protocol_whitelist", "file", "-f", <demuxer> right before the source's -i


def unpinned(argv: list[str]) -> list[str]:
    """The same command as the planner built it before the source input was pinned."""
    i = argv.index("-i")
    assert argv[i - PIN_LEN:i - 2] == ["-protocol_whitelist", "file"] and argv[i - 2] == "-f"
    return argv[:i - PIN_LEN] + argv[i:]


def test_demuxer_table_is_ffmpeg_9s_and_pyavs():
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-demuxers"], capture_output=True, text=True, check=True,
                         stdin=subprocess.DEVNULL).stdout
    names = {m.group(1) for m in re.finditer(r"^ D.?\s+(\S+)\s", out, re.M)}
    assert "mov,mp4,m4a,3gp,3g2,mj2" in names and "hls" in names  # the listing was parsed
    for probed, forced in DEMUXERS.items():
        assert probed in names, f"{probed}: not a demuxer of FFmpeg 9"  # the name PyAV reports is FFmpeg 9's too
        assert forced in probed.split(","), probed  # -f <alias> selects exactly that demuxer
        assert probed in av.formats_available, f"{probed}: not a demuxer of PyAV's libavformat"


def _real_media(media: Path) -> list[Path]:
    return [p for p in sorted(media.glob("*.*")) if p.suffix not in (".md",) and p.name != "corrupt_truncated.mkv"]


def test_every_test_medium_encodes_exactly_as_without_the_pin(tmp_path, media):
    seen = set()
    for src in _real_media(media):
        info = media_info(probe(src))
        seen.add(info.format_name)
        plan = plan_output(Format.model_validate({"output": "mp4", "size": "320x180", "duration": 0.5}), source=src,
                           info=info, workdir=tmp_path, ffmpeg=ffmpeg_exe(), index=0, upscale=True)
        (step,) = plan.steps
        digests = []
        for argv in (step.argv, unpinned(step.argv)):
            proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
            assert proc.returncode == 0, f"{src.name}: {proc.stderr[-1500:]}"
            digests.append(plan.outputs[0].files[0].read_bytes())
        assert digests[0] == digests[1], f"{src.name}: the pinned encode differs"
    assert seen == {"mov,mp4,m4a,3gp,3g2,mj2", "mpeg", "avi", "matroska,webm"}


DERIVED_FORMATS = [
    pytest.param("a.mkv", ["-c", "copy"], "matroska,webm", id="mkv"),
    pytest.param("a.ts", ["-c", "copy"], "mpegts", id="mpegts"),
    pytest.param("a.flv", ["-c:v", "flv1", "-an"], "flv", id="flv"),
    pytest.param("a.wmv", ["-c:v", "wmv2", "-an"], "asf", id="asf"),
    pytest.param("a.ogv", ["-c:v", "libtheora", "-an"], "ogg", id="ogg"),
    pytest.param("a.mxf", ["-c:v", "mpeg2video", "-s", "720x576", "-r", "25", "-an"], "mxf", id="mxf"),
    pytest.param("a.dv", ["-c:v", "dvvideo", "-s", "720x576", "-r", "25", "-pix_fmt", "yuv420p", "-an"], "dv",
                 id="dv"),
    pytest.param("a.h264", ["-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264"], "h264", id="h264"),
    pytest.param("a.hevc", ["-c:v", "libx265", "-x265-params", "log-level=error", "-f", "hevc"], "hevc", id="hevc"),
    pytest.param("a.m4v", ["-c:v", "mpeg4", "-f", "m4v"], "m4v", id="m4v"),
    pytest.param("a.m2v", ["-c:v", "mpeg2video"], "mpegvideo", id="mpegvideo"),
    pytest.param("a.ivf", ["-c:v", "libvpx"], "ivf", id="ivf"),
    pytest.param("a.y4m", ["-pix_fmt", "yuv420p"], "yuv4mpegpipe", id="y4m"),
    pytest.param("a.mjpeg", ["-c:v", "mjpeg", "-f", "mjpeg"], "jpeg_pipe", id="mjpeg-stream"),
    pytest.param("a.gif", [], "gif", id="gif"),
]


@pytest.mark.parametrize(("name", "args", "format_name"), DERIVED_FORMATS)
def test_other_accepted_containers_encode_pinned(tmp_path, media, name, args, format_name):
    made = make(["-t", "0.5", "-i", str(media / "carphone_qcif_sar.mp4"), *args], tmp_path / name)
    src = made.rename(tmp_path / "source")  # the pipeline stores every source as "source": no extension hints
    assert media_info(probe(src)).format_name == format_name
    plan, out = encode(tmp_path, src, output="mp4", duration=0.3)
    assert f"-f {DEMUXERS[format_name]} -i file:{src}" in " ".join(plan.steps[0].argv)
    assert video(out)["frames"] > 0


class OpenWatch:
    """A FIFO standing in for a file a playlist names: records whether any process opened it for reading."""

    def __init__(self, path: Path):
        self.path, self.opened = path, 0
        os.mkfifo(path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:  # a non-blocking writer open succeeds only while there is a reader (ENXIO otherwise)
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO, exc
                time.sleep(0.002)
                continue
            self.opened += 1
            os.close(fd)  # the reader sees end of file

    def __enter__(self) -> OpenWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


class Listener:
    """A TCP port on 127.0.0.1 that counts connections."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port, self.connections = self.sock.getsockname()[1], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL,
                          timeout=30)


@pytest.mark.parametrize("name", ["x.mp4", "x.m3u8"])
def test_hls_playlist_posing_as_mp4_never_opens_what_it_names(tmp_path, media, name):
    real = media / "carphone_qcif_sar.mp4"
    with OpenWatch(tmp_path / "secret.ts") as secret, Listener() as web:
        playlist = tmp_path / name
        playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n"
                            f"#EXTINF:0.5,\n{secret.path}\n"
                            "#EXTINF:0.5,\nhttp://127.0.0.1:9/a.ts\n"
                            f"#EXTINF:0.5,\nhttp://127.0.0.1:{web.port}/b.ts\n#EXT-X-ENDLIST\n")
        with pytest.raises(ProbeError):  # the probe (file protocol only) refuses it...
            probe(playlist)
        # (PyAV's libavformat only takes it for HLS by the .m3u8 name, and then opens what it names before the
        # probe refuses it: see test_probe.py; the pipeline stores sources as an extensionless "source")
        assert secret.opened == 0 or name.endswith(".m3u8")
        secret.opened = 0
        # ...and were a build's detection to disagree (PyAV saw an MP4, FFmpeg 9 a playlist), the encode
        # reads it as the MP4 the probe saw: no playlist, nothing it names is opened
        info = media_info(probe(real))
        plan = plan_output(Format.model_validate({"output": "mp4", "duration": 0.5}), source=playlist, info=info,
                           workdir=tmp_path, ffmpeg=ffmpeg_exe(), index=0, upscale=False)
        (step,) = plan.steps
        proc = run(step.argv)
        assert proc.returncode != 0 and "moov atom not found" in proc.stderr
        assert not plan.outputs[0].files[0].exists()
        assert (secret.opened, web.connections) == (0, 0)
        if name.endswith(".m3u8"):  # the FFmpeg 9 build itself detects this one as HLS: unpinned, it follows it
            run(unpinned(step.argv))
            assert secret.opened > 0
    assert web.connections == 0  # FFmpeg's defaults already keep a local playlist off http


def test_protocol_whitelist_keeps_ffmpeg_off_the_network(tmp_path):
    with Listener() as web:
        url = f"http://127.0.0.1:{web.port}/source.mp4"
        proc = run([ffmpeg_exe(), "-hide_banner", "-y", "-protocol_whitelist", "file", "-i", url, "-f", "null", "-"])
        assert proc.returncode != 0 and web.connections == 0
        run([ffmpeg_exe(), "-hide_banner", "-y", "-i", url, "-f", "null", "-"])  # the control: it does connect
        assert web.connections > 0

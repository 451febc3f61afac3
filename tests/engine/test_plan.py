"""The planner, pure: a format and a probed source in, exact FFmpeg argv out (no FFmpeg runs here)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vidmill.core.query import Format, Query
from vidmill.engine.plan import DEMUXERS, Notice, Plan, PlannedOutput, UpscaleDecision, decide_upscale, plan_output
from vidmill.engine.probe import MediaInfo
from vidmill.errors import ProbeError, QueryError, UnsupportedField

FF = "/opt/ffmpeg/bin/ffmpeg"
SRC = Path("/jobs/7/source.mp4")
WD = Path("/jobs/7/work")
PIN = ["-protocol_whitelist", "file", "-f", "mov"]  # before every -i of the source
FDK = "libfdk_aac is not available; encoded with FFmpeg's native AAC encoder"


def info(**kw) -> MediaInfo:
    base = dict(has_video=True, has_audio=True, duration=10.0, format_name="mov,mp4,m4a,3gp,3g2,mj2",
                size_bytes=1_000_000, bit_rate=800_000, width=1280, height=720, display_width=1280,
                display_height=720, fps=25.0, video_codec="h264", pix_fmt="yuv420p", audio_codec="aac",
                audio_channels=2, audio_sample_rate=48000)
    base.update(kw)
    return MediaInfo(**base)


HD = info()
PORTRAIT = info(width=720, height=1280, display_width=720, display_height=1280)
ROTATED = info(rotation=90, display_width=720, display_height=1280)  # coded 1280x720, display matrix 90
SILENT = info(has_audio=False, audio_codec=None, audio_channels=None, audio_sample_rate=None)


def fmt(**kw) -> Format:
    return Format.model_validate({"output": "mp4", **kw})


def plan(f: Format, src: MediaInfo = HD, **kw) -> Plan:
    kw.setdefault("upscale", False)
    return plan_output(f, source=SRC, info=src, workdir=WD, ffmpeg=FF, index=0, **kw)


def argv(f: Format, src: MediaInfo = HD, **kw) -> list[str]:
    p = plan(f, src, **kw)
    assert len(p.steps) == 1
    return p.steps[0].argv


def opt(args: list[str], name: str) -> str:
    """The value after the (last) option ``name``."""
    i = len(args) - 1 - args[::-1].index(name)
    return args[i + 1]


def has_seq(args: list[str], seq: list[str]) -> bool:
    return any(args[i:i + len(seq)] == seq for i in range(len(args) - len(seq) + 1))


def files(p: Plan) -> list[Path]:
    return [f for o in p.outputs for f in o.files]


def messages(p: Plan) -> list[str]:
    return [w.message for w in p.notices]


# --- whole commands -------------------------------------------------------------------------------------


def test_mp4_defaults_exact_argv():
    p = plan(fmt())
    assert files(p) == [WD / "video-0.mp4"] and p.notices == [] and not p.skipped
    assert p.steps[0].duration_s == 10.0 and p.steps[0].label == "encode"
    assert p.steps[0].argv == [
        FF, "-y", "-protocol_whitelist", "file", "-f", "mov", "-i", "file:/jobs/7/source.mp4",
        "-map", "0:v:0", "-map", "0:a:0", "-map_metadata", "-1", "-map_chapters", "-1",
        "-vf", "scale=1280:720,setsar=1",
        "-c:v", "libx264", "-preset", "faster", "-profile:v", "main", "-pix_fmt", "yuv420p", "-crf", "23",
        "-g", "90", "-keyint_min", "90", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2",
        "-movflags", "+faststart", "-f", "mp4", "/jobs/7/work/video-0.mp4",
    ]


def test_webm_defaults_exact_argv():
    assert argv(fmt(output="webm")) == [
        FF, "-y", "-protocol_whitelist", "file", "-f", "mov", "-i", "file:/jobs/7/source.mp4",
        "-map", "0:v:0", "-map", "0:a:0", "-map_metadata", "-1", "-map_chapters", "-1",
        "-vf", "scale=1280:720,setsar=1",
        "-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "4", "-row-mt", "1", "-pix_fmt", "yuv420p",
        "-crf", "31", "-b:v", "0", "-g", "90", "-keyint_min", "90",
        "-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2",
        "-f", "webm", "/jobs/7/work/video-0.webm",
    ]


def test_libx265_mp4_is_tagged_hvc1():
    args = argv(fmt(video_codec="libx265"))
    assert has_seq(args, ["-c:v", "libx265", "-preset", "fast", "-pix_fmt", "yuv420p", "-crf", "28"])
    assert has_seq(args, ["-x265-params", "log-level=error:scenecut=0"])
    assert has_seq(args, ["-tag:v", "hvc1", "-movflags", "+faststart", "-f", "mp4"])


def test_vp8_webm_with_vorbis():
    args = argv(fmt(output="webm", video_codec="libvpx", audio_codec="libvorbis"))
    assert has_seq(args, ["-c:v", "libvpx", "-deadline", "good", "-cpu-used", "4", "-pix_fmt", "yuv420p",
                          "-crf", "10", "-b:v", "2000k"])
    assert has_seq(args, ["-c:a", "libvorbis", "-b:a", "64k", "-ar", "44100", "-ac", "2"])


def test_vp9_in_mp4():
    args = argv(fmt(video_codec="libvpx-vp9"))
    assert has_seq(args, ["-c:v", "libvpx-vp9"]) and has_seq(args, ["-c:a", "aac"])


def test_output_names_never_come_from_user_strings():
    p = plan_output(fmt(tag="../../etc/passwd"), source=Path("/in/-y.mp4"), info=HD, workdir=WD, ffmpeg=FF,
                    index=3, upscale=False)
    assert files(p) == [WD / "video-3.mp4"]
    assert has_seq(p.steps[0].argv, [*PIN, "-i", "file:/in/-y.mp4"])
    assert p.steps[0].argv[0] == FF


# --- the source input: local files only, the demuxer the probe saw ---------------------------------------

PINNED = [
    pytest.param("mov,mp4,m4a,3gp,3g2,mj2", "mov", id="mp4-mov"),
    pytest.param("matroska,webm", "matroska", id="mkv-webm"),
    pytest.param("avi", "avi", id="avi"),
    pytest.param("mpeg", "mpeg", id="mpeg-ps"),
    pytest.param("mpegts", "mpegts", id="mpeg-ts"),
    pytest.param("mxf", "mxf", id="mxf"),
    pytest.param("flv", "flv", id="flv"),
    pytest.param("asf", "asf", id="wmv"),
    pytest.param("ogg", "ogg", id="ogg"),
    pytest.param("dv", "dv", id="dv"),
    pytest.param("h264", "h264", id="h264-raw"),
    pytest.param("hevc", "hevc", id="hevc-raw"),
    pytest.param("m4v", "m4v", id="mpeg4-raw"),
    pytest.param("mpegvideo", "mpegvideo", id="mpeg2-raw"),
    pytest.param("ivf", "ivf", id="ivf"),
    pytest.param("yuv4mpegpipe", "yuv4mpegpipe", id="y4m"),
    pytest.param("mjpeg", "mjpeg", id="mjpeg"),
    pytest.param("jpeg_pipe", "jpeg_pipe", id="mjpeg-by-content"),
    pytest.param("gif", "gif", id="gif"),
]


@pytest.mark.parametrize(("format_name", "demuxer"), PINNED)
def test_source_demuxer_is_pinned_and_protocols_are_file_only(format_name, demuxer):
    p = plan(fmt(two_pass=1, bitrate=500, audio_mute=1, start_time=1, duration=2), info(format_name=format_name))
    for step in p.steps:
        args = step.argv
        assert args[:12] == [FF, "-y", "-ss", "1", "-t", "2", "-protocol_whitelist", "file", "-f", demuxer,
                             "-i", "file:/jobs/7/source.mp4"]
        assert args.count("-protocol_whitelist") == 1  # the lavfi silence is no protocol


def test_every_video_demuxer_of_the_table_is_tested():
    audio_only = {"wav", "mp3", "aac", "flac"}
    assert {p.values[0] for p in PINNED} == set(DEMUXERS) - audio_only


@pytest.mark.parametrize(("format_name", "match"), [
    pytest.param("hls", "HLS playlist", id="hls"),
    pytest.param("dash", "DASH manifest", id="dash"),
    pytest.param("concat", "ffconcat playlist", id="concat"),
    pytest.param("tty", "text file", id="tty"),
    pytest.param("image2", "image sequence", id="image2-pattern"),
    pytest.param("image2pipe", r"container \(image2pipe\) is not one vidmill reads", id="image2pipe"),
    pytest.param("rm", r"container \(rm\) is not one vidmill reads", id="unknown"),
    pytest.param("mov", r"container \(mov\) is not one vidmill reads", id="alias-is-not-the-probed-name"),
    pytest.param("lavfi", "not one vidmill reads", id="lavfi-device"),
    pytest.param(None, "no container format", id="missing"),
    pytest.param("", "no container format", id="empty"),
])
def test_playlist_or_unknown_source_format_is_refused(format_name, match):
    src = info(format_name=format_name)
    with pytest.raises(ProbeError, match=match) as err:
        plan(fmt(), src)
    assert "/jobs" not in err.value.message  # no server path in what becomes a job's error
    with pytest.raises(ProbeError):  # refused even when the format would be skipped as an upscale
        plan(fmt(size="3840x2160"), src)


def test_metadata_output_needs_no_demuxer():
    p = plan(fmt(output="metadata"), info(format_name=None), probe_json={"format": {}})
    assert p.steps == []


# --- geometry -------------------------------------------------------------------------------------------

GEOMETRY = [
    pytest.param({}, HD, "scale=1280:720,setsar=1", id="no-size-keeps-source"),
    pytest.param({"size": "320x240"}, HD, "scale=320:240,setsar=1", id="size"),
    pytest.param({"size": "321x241"}, HD, "scale=320:240,setsar=1", id="size-odd-rounds-down-to-even"),
    pytest.param({"width": 640}, HD, "scale=640:360,setsar=1", id="width-only-height-proportional"),
    pytest.param({"height": 360}, HD, "scale=640:360,setsar=1", id="height-only-width-proportional"),
    pytest.param({"height": 240}, HD, "scale=426:240,setsar=1", id="derived-side-nearest-even"),
    pytest.param({"width": 640, "height": 480}, HD, "scale=640:480,setsar=1", id="width-and-height"),
    pytest.param({"resolution": 360}, HD, "scale=640:360,setsar=1", id="resolution-horizontal-is-height"),
    pytest.param({"resolution": 360}, PORTRAIT, "scale=360:640,setsar=1", id="resolution-vertical-is-width"),
    pytest.param({"resolution": 360, "size": "100x100", "width": 50}, HD, "scale=640:360,setsar=1",
                 id="resolution-overrides-size-width-height"),
    pytest.param({"resolution": 360}, ROTATED, "scale=360:640,setsar=1",
                 id="source-rotation-honoured-via-display-size"),
    pytest.param({"resolution": 360}, info(width=720, height=720, display_width=720, display_height=720),
                 "scale=360:360,setsar=1", id="resolution-square"),
    pytest.param({"rotate": 90}, HD, "transpose=clock,scale=720:1280,setsar=1", id="rotate-90"),
    pytest.param({"rotate": 180}, HD, "hflip,vflip,scale=1280:720,setsar=1", id="rotate-180"),
    pytest.param({"rotate": 270}, HD, "transpose=cclock,scale=720:1280,setsar=1", id="rotate-270"),
    pytest.param({"rotate": 0}, HD, "scale=1280:720,setsar=1", id="rotate-0"),
    pytest.param({"rotate": 90, "resolution": 360}, HD, "transpose=clock,scale=360:640,setsar=1",
                 id="rotate-then-resolution-sees-vertical"),
    pytest.param({"aspect_ratio": "4:3"}, HD, "scale=960:720,setsar=1", id="aspect-scale-stretches"),
    pytest.param({"aspect_ratio": "4:3", "resize_mode": "scale"}, HD, "scale=960:720,setsar=1",
                 id="aspect-scale-explicit"),
    pytest.param({"aspect_ratio": "4:3", "resize_mode": "crop"}, HD,
                 "scale=1280:720,crop=960:720:160:0,setsar=1", id="aspect-crop-wider-source-cropped"),
    pytest.param({"aspect_ratio": "1.33", "resolution": 240, "resize_mode": "crop"}, HD,
                 "scale=426:240,crop=320:240:52:0,setsar=1", id="aspect-decimal-with-resolution"),
    pytest.param({"aspect_ratio": "16:9", "resize_mode": "crop"},
                 info(width=640, height=480, display_width=640, display_height=480),
                 "scale=640:480,pad=854:480:106:0:black,setsar=1", id="aspect-crop-narrower-source-black-bars"),
    pytest.param({"size": "640x640", "resize_mode": "crop"}, HD,
                 "scale=1138:640,crop=640:640:248:0,setsar=1", id="crop-mode-size-centre-cut"),
    pytest.param({"size": "360x640", "resize_mode": "crop"}, HD,
                 "scale=360:202,pad=360:640:0:218:black,setsar=1", id="crop-mode-vertical-output-letterbox"),
    pytest.param({"size": "360x640"}, HD, "scale=360:640,setsar=1", id="scale-mode-size-stretches"),
    pytest.param({"resize_mode": "crop"}, HD, "scale=1280:720,setsar=1", id="crop-mode-same-aspect-just-scales"),
    pytest.param({}, info(width=176, height=144, sar=Fraction(128, 117),
                          display_width=193, display_height=144),
                 "scale=192:144,setsar=1", id="sar-source-to-square-pixels"),
    pytest.param({}, info(width=720, height=405, display_width=720, display_height=405),
                 "scale=720:404,setsar=1", id="odd-height-to-even"),
    pytest.param({"deinterlace": 1}, HD, "bwdif=mode=send_frame,scale=1280:720,setsar=1", id="deinterlace"),
    pytest.param({"deinterlace": 0}, info(interlaced=True), "scale=1280:720,setsar=1",
                 id="deinterlace-only-when-asked"),
    pytest.param({"framerate": "30"}, HD, "fps=30,scale=1280:720,setsar=1", id="framerate-int"),
    pytest.param({"framerate": "29.97"}, HD, "fps=2997/100,scale=1280:720,setsar=1", id="framerate-decimal"),
    pytest.param({"framerate": "30000/1001"}, HD, "fps=30000/1001,scale=1280:720,setsar=1",
                 id="framerate-rational"),
    pytest.param({"deinterlace": 1, "framerate": "25", "rotate": 90, "resolution": 240}, HD,
                 "bwdif=mode=send_frame,fps=25,transpose=clock,scale=240:426,setsar=1", id="filter-order"),
]


@pytest.mark.parametrize(("fields", "src", "vf"), GEOMETRY)
def test_geometry(fields, src, vf):
    assert opt(argv(fmt(**fields), src), "-vf") == vf


def test_aspect_ratio_with_full_size_warns():
    p = plan(fmt(size="640x480", aspect_ratio="16:9"))
    assert opt(p.steps[0].argv, "-vf") == "scale=640:480,setsar=1"
    assert p.notices == [Notice("adjusted", "aspect_ratio is ignored: the output size sets both sides",
                                 "format[0].aspect_ratio", 0)]


def test_sws_flags():
    args = argv(fmt(video_codec_parameters={"sws_flags": "lanczos"}))
    assert has_seq(args, ["-vf", "scale=1280:720,setsar=1", "-sws_flags", "lanczos", "-c:v", "libx264"])


# --- keyframes ------------------------------------------------------------------------------------------

KEYFRAMES = [
    pytest.param({}, HD, ["-g", "90", "-keyint_min", "90"], id="default-90-frames"),
    pytest.param({"keyframe": "60"}, HD, ["-g", "60", "-keyint_min", "60"], id="frames"),
    pytest.param({"keyframe": 48}, HD, ["-g", "48", "-keyint_min", "48"], id="frames-int"),
    pytest.param({"keyframe": "2s"}, HD,
                 ["-force_key_frames", "expr:gte(t,n_forced*2)", "-g", "50", "-keyint_min", "50"],
                 id="seconds-gop-from-source-fps"),
    pytest.param({"keyframe": "1.5s", "framerate": "30"}, HD,
                 ["-force_key_frames", "expr:gte(t,n_forced*1.5)", "-g", "45", "-keyint_min", "45"],
                 id="seconds-gop-from-output-fps"),
    pytest.param({"keyframe": "2s"}, info(fps=None),
                 ["-force_key_frames", "expr:gte(t,n_forced*2)", "-g", "50", "-keyint_min", "50"],
                 id="seconds-unknown-fps-assumes-25"),
    # 12.5 frames: the forced keyframe lands on frame 13, so the GOP is 13 (12 added an IDR one frame early)
    pytest.param({"keyframe": "0.5s"}, info(fps=None),
                 ["-force_key_frames", "expr:gte(t,n_forced*0.5)", "-g", "13", "-keyint_min", "13"],
                 id="seconds-fractional-frames-round-up"),
]


@pytest.mark.parametrize(("fields", "src", "expected"), KEYFRAMES)
def test_keyframes(fields, src, expected):
    assert has_seq(argv(fmt(**fields), src), expected)


def test_sc_threshold_default_off_and_overridable():
    assert has_seq(argv(fmt()), ["-sc_threshold", "0"])
    assert has_seq(argv(fmt(video_codec_parameters={"sc_threshold": 40})), ["-sc_threshold", "40"])
    assert "scenecut=40" in opt(argv(fmt(video_codec="libx265", video_codec_parameters={"sc_threshold": 40})),
                                "-x265-params")


# --- rate control ---------------------------------------------------------------------------------------

RATES = [
    pytest.param({}, ["-crf", "23"], id="x264-default-crf"),
    pytest.param({"quality": 20}, ["-crf", "20"], id="x264-quality"),
    pytest.param({"bitrate": 1500}, ["-b:v", "1500k"], id="x264-bitrate"),
    pytest.param({"quality": 20, "bitrate": 1500}, ["-crf", "20", "-maxrate", "1500k", "-bufsize", "3000k"],
                 id="x264-quality-capped-by-bitrate"),
    pytest.param({"bitrate": 1500, "video_codec_parameters": {"max_rate": 2.5, "bufsize": 5}},
                 ["-b:v", "1500k", "-maxrate", "2500k", "-bufsize", "5000k"], id="x264-vbv-in-mbps"),
    pytest.param({"bitrate": 1500, "video_codec_parameters": {"max_rate": 2, "min_rate": 1, "bufsize": 4}},
                 ["-b:v", "1500k", "-maxrate", "2000k", "-minrate", "1000k", "-bufsize", "4000k"],
                 id="x264-min-rate-in-mbps"),
    pytest.param({"video_codec_parameters": {"max_rate": 3}}, ["-crf", "23", "-maxrate", "3000k", "-bufsize", "6000k"],
                 id="x264-max-rate-without-bufsize"),
    pytest.param({"video_codec": "libx265", "quality": 26}, ["-crf", "26"], id="x265-quality"),
    pytest.param({"video_codec": "libx265", "bitrate": 900,
                  "video_codec_parameters": {"max_rate": 1200, "bufsize": 2400}},
                 ["-b:v", "900k", "-maxrate", "1200k", "-bufsize", "2400k"], id="x265-vbv-in-kbps"),
    pytest.param({"output": "webm", "quality": 30}, ["-crf", "30", "-b:v", "0"], id="vp9-quality"),
    pytest.param({"output": "webm", "bitrate": 800}, ["-b:v", "800k"], id="vp9-bitrate"),
    pytest.param({"output": "webm", "quality": 30, "bitrate": 800}, ["-crf", "30", "-b:v", "800k", "-g"],
                 id="vp9-constrained-quality"),
    pytest.param({"output": "webm", "video_codec": "libvpx", "quality": 12, "bitrate": 700},
                 ["-crf", "12", "-b:v", "700k", "-g"], id="vp8-quality-with-cap"),
]


@pytest.mark.parametrize(("fields", "expected"), RATES)
def test_rate_control(fields, expected):
    assert has_seq(argv(fmt(**fields)), expected)


def test_vp8_quality_below_minimum_is_raised_with_warning():
    p = plan(fmt(output="webm", video_codec="libvpx", quality=2))
    assert has_seq(p.steps[0].argv, ["-crf", "4", "-b:v", "2000k"])
    assert messages(p) == ["quality 2 is below libvpx's minimum; encoded with 4"]


def test_two_pass_x264_exact_steps():
    p = plan(fmt(two_pass=1, bitrate=1000, size="640x360", duration=4))
    assert [s.label for s in p.steps] == ["pass 1 of 2", "pass 2 of 2"]
    assert [s.duration_s for s in p.steps] == [4.0, 4.0]
    video = ["-vf", "scale=640:360,setsar=1", "-c:v", "libx264", "-preset", "faster", "-profile:v", "main",
             "-pix_fmt", "yuv420p", "-b:v", "1000k", "-g", "90", "-keyint_min", "90", "-sc_threshold", "0"]
    assert p.steps[0].argv == [
        FF, "-y", "-t", "4", *PIN, "-i", "file:/jobs/7/source.mp4", "-map", "0:v:0", "-map_metadata", "-1",
        "-map_chapters", "-1", *video, "-pass", "1", "-passlogfile", "/jobs/7/work/pass-0",
        "-an", "-f", "null", "/dev/null",
    ]
    assert p.steps[1].argv == [
        FF, "-y", "-t", "4", *PIN, "-i", "file:/jobs/7/source.mp4", "-map", "0:v:0", "-map", "0:a:0",
        "-map_metadata", "-1", "-map_chapters", "-1", *video, "-pass", "2", "-passlogfile", "/jobs/7/work/pass-0",
        "-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2", "-movflags", "+faststart", "-f", "mp4",
        "/jobs/7/work/video-0.mp4",
    ]
    assert files(p) == [WD / "video-0.mp4"]


@pytest.mark.parametrize(("fields", "pass1", "pass2"), [
    pytest.param({"video_codec": "libx265"}, ["-pass", "1", "-x265-stats", "/jobs/7/work/pass-0.x265"],
                 ["-pass", "2", "-x265-stats", "/jobs/7/work/pass-0.x265"], id="x265"),
    pytest.param({"output": "webm"}, ["-pass", "1", "-passlogfile", "/jobs/7/work/pass-0"],
                 ["-pass", "2", "-passlogfile", "/jobs/7/work/pass-0"], id="vp9"),
])
def test_two_pass_other_encoders(fields, pass1, pass2):
    p = plan(fmt(two_pass=1, bitrate=500, **fields))
    assert has_seq(p.steps[0].argv, [*pass1, "-an", "-f", "null", "/dev/null"])
    assert has_seq(p.steps[1].argv, pass2) and has_seq(p.steps[1].argv, ["-b:v", "500k"])


def test_two_pass_without_bitrate_is_one_pass_with_warning():
    p = plan(fmt(two_pass=1, quality=22))
    assert len(p.steps) == 1 and "-pass" not in p.steps[0].argv
    assert p.notices == [Notice("adjusted", "two_pass needs a bitrate; encoded in one pass", "format[0].two_pass", 0)]


# --- profile, level, pix_format, preset -----------------------------------------------------------------

CODEC_SETTINGS = [
    pytest.param({}, ["-profile:v", "main", "-pix_fmt", "yuv420p"], id="x264-default-main"),
    pytest.param({"profile": "high"}, ["-profile:v", "high"], id="profile"),
    pytest.param({"profile": "baseline", "video_codec_parameters": {"vprofile": "high"}}, ["-profile:v", "high"],
                 id="vprofile-wins"),
    pytest.param({"video_codec_parameters": {"level": 41}}, ["-profile:v", "main", "-level:v", "4.1"],
                 id="level-two-digits"),
    pytest.param({"video_codec_parameters": {"level": "3.1"}}, ["-level:v", "3.1"], id="level-dotted"),
    pytest.param({"pix_format": "yuv422p"}, ["-profile:v", "high422", "-pix_fmt", "yuv422p"],
                 id="yuv422p-needs-high422"),
    pytest.param({"pix_format": "yuvj420p"}, ["-profile:v", "main", "-pix_fmt", "yuvj420p"], id="yuvj420p"),
    pytest.param({"pix_format": "yuv420p10le"}, ["-profile:v", "high10", "-pix_fmt", "yuv420p10le"],
                 id="10-bit-needs-high10"),
    pytest.param({"video_codec_parameters": {"preset": "slow"}}, ["-preset", "slow"], id="preset"),
    pytest.param({"video_codec": "libx265", "profile": "main10", "pix_format": "yuv420p10le"},
                 ["-profile:v", "main10", "-pix_fmt", "yuv420p10le"], id="x265-profile"),
    pytest.param({"video_codec": "libx265", "video_codec_parameters": {"preset": "medium"}},
                 ["-c:v", "libx265", "-preset", "medium"], id="x265-preset"),
    pytest.param({"output": "webm", "profile": "1", "pix_format": "yuv422p"},
                 ["-profile:v", "1", "-pix_fmt", "yuv422p"], id="vp9-profile"),
]


@pytest.mark.parametrize(("fields", "expected"), CODEC_SETTINGS)
def test_codec_settings(fields, expected):
    assert has_seq(argv(fmt(**fields)), expected)


@pytest.mark.parametrize(("fields", "profile", "message"), [
    pytest.param({"video_codec": "libx265", "profile": "main444-10", "pix_format": "yuv444p"}, "main444-10", None,
                 id="x265-main444-10-is-valid"),
    pytest.param({"video_codec": "libx265", "profile": "main", "pix_format": "yuv444p"}, "main444-8",
                 "profile main cannot carry yuv444p; encoded with main444-8", id="x265-upgraded"),
    pytest.param({"video_codec": "libx265", "video_codec_parameters": {"vprofile": "high"}}, None,
                 "profile high is not a libx265 profile (main, main10, main12, main422-10, main444-8, main444-10, "
                 "mainstillpicture); the encoder chose its own", id="x265-h264-profile"),
    pytest.param({"output": "webm", "profile": "0", "pix_format": "yuv420p10le"}, "2",
                 "profile 0 cannot carry yuv420p10le; encoded with 2", id="vp9-10-bit-needs-2"),
    pytest.param({"profile": "high10", "pix_format": "yuv422p"}, "high422",
                 "profile high10 cannot carry yuv422p; encoded with high422", id="x264-high10-422"),
])
def test_profiles_come_from_one_table(fields, profile, message):
    p = plan(fmt(**fields))
    argv = p.steps[0].argv
    assert (opt(argv, "-profile:v") if "-profile:v" in argv else None) == profile
    assert messages(p) == ([message] if message else [])


def test_profile_too_small_for_pix_format_is_upgraded_with_warning():
    p = plan(fmt(profile="main", pix_format="yuv422p"))
    assert has_seq(p.steps[0].argv, ["-profile:v", "high422"])
    assert messages(p) == ["profile main cannot carry yuv422p; encoded with high422"]


@pytest.mark.parametrize(("fields", "pix", "message"), [
    pytest.param({"output": "webm", "pix_format": "yuvj420p"}, "yuv420p",
                 "pix_format yuvj420p is not supported by libvpx-vp9; encoded as yuv420p", id="vp9-yuvj"),
    pytest.param({"output": "webm", "video_codec": "libvpx", "pix_format": "yuv422p"}, "yuv420p",
                 "pix_format yuv422p is not supported by libvpx; encoded as yuv420p", id="vp8-422"),
])
def test_vpx_pix_format_fallback(fields, pix, message):
    p = plan(fmt(**fields))
    assert opt(p.steps[0].argv, "-pix_fmt") == pix and messages(p) == [message]


# --- x264 / x265 advanced parameters --------------------------------------------------------------------

X264_PARAMS = [
    pytest.param({"coder": 0}, ["-coder", "0"], id="coder"),
    pytest.param({"flags2": "+bpyramid+wpred+mixed_refs"},
                 ["-b-pyramid", "normal", "-weightb", "1", "-mixed-refs", "1"], id="flags2-on"),
    pytest.param({"flags2": "+dct8×8-fastpskip+aud"}, ["-8x8dct", "1", "-fast-pskip", "0", "-aud", "1"],
                 id="flags2-dct8x8-unicode-and-off"),
    pytest.param({"flags2": "-bpyramid+mbtree-psy+ssim"},
                 ["-b-pyramid", "none", "-mbtree", "1", "-psy", "0", "-ssim", "1"], id="flags2-more"),
    pytest.param({"partitions": "+partp8x8+partp4x4+partb8x8+parti8x8+parti4x4"},
                 ["-partitions", "p8x8,p4x4,b8x8,i8x8,i4x4"], id="partitions"),
    pytest.param({"directpred": 3}, ["-direct-pred", "3"], id="directpred"),
    pytest.param({"me_method": "epzs"}, ["-me_method", "dia"], id="me-epzs-is-dia"),
    pytest.param({"me_method": "umh"}, ["-me_method", "umh"], id="me-umh"),
    pytest.param({"me_method": "full"}, ["-me_method", "esa"], id="me-full-is-esa"),
    pytest.param({"subq": 7}, ["-subq", "7"], id="subq"),
    pytest.param({"trellis": 2}, ["-trellis", "2"], id="trellis"),
    pytest.param({"refs": 4}, ["-refs", "4"], id="refs"),
    pytest.param({"cmp": "chroma"}, ["-cmp", "chroma"], id="cmp-name"),
    pytest.param({"cmp": 2}, ["-cmp", "2"], id="cmp-number"),
    pytest.param({"me_range": 24}, ["-me_range", "24"], id="me_range"),
    pytest.param({"i_qfactor": 0.71}, ["-i_qfactor", "0.71"], id="i_qfactor"),
    pytest.param({"b_strategy": 2}, ["-b_strategy", "2"], id="b_strategy"),
    pytest.param({"qcomp": 0.6}, ["-qcomp", "0.6"], id="qcomp"),
    pytest.param({"qmin": 10, "qmax": 51, "qdiff": 4}, ["-qmin", "10", "-qmax", "51", "-qdiff", "4"], id="q-limits"),
    pytest.param({"rc_lookahead": 30}, ["-rc-lookahead", "30"], id="rc_lookahead"),
    pytest.param({"flags": "+loop+cgop-ilme"}, ["-flags", "+loop+cgop-ilme"], id="flags"),
]


@pytest.mark.parametrize(("params", "expected"), X264_PARAMS)
def test_x264_parameters(params, expected):
    p = plan(fmt(video_codec_parameters=params))
    args = p.steps[0].argv
    assert has_seq(args, ["-sc_threshold", "0", *expected]), args[args.index("-sc_threshold"):]
    assert p.notices == []


def test_x264_flags_ffmpeg_dropped_or_ours_are_warned():
    p = plan(fmt(video_codec_parameters={"flags": "+loop+qscale+pass1"}))
    assert has_seq(p.steps[0].argv, ["-flags", "+loop", "-c:a"])
    assert [w.field for w in p.notices] == ["format[0].video_codec_parameters.flags"] * 2
    assert messages(p) == ["video_codec_parameters.flags qscale is not supported by this FFmpeg; ignored",
                           "video_codec_parameters.flags pass1 is ignored: use two_pass"]


def test_x265_parameters():
    p = plan(fmt(video_codec="libx265", video_codec_parameters={
        "level": 41, "me_method": "umh", "i_qfactor": 0.8, "refs": 3, "subq": 2, "me_range": 57, "qcomp": 0.7,
        "qmin": 5, "qmax": 45, "qdiff": 3, "b_strategy": 2, "rc_lookahead": 15, "trellis": 1, "coder": 1,
    }))
    assert opt(p.steps[0].argv, "-x265-params") == (
        "log-level=error:scenecut=0:level-idc=4.1:me=umh:ipratio=1.25:ref=3:subme=2:merange=57:qcomp=0.7:"
        "qpmin=5:qpmax=45:qpstep=3:b-adapt=2:rc-lookahead=15:rdoq-level=1")
    assert messages(p) == ["video_codec_parameters.coder is not used by libx265"]


# --- audio ----------------------------------------------------------------------------------------------

AUDIO = [
    pytest.param({}, HD, ["-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2"], id="defaults"),
    pytest.param({"audio_bitrate": 128, "audio_sample_rate": 48000, "audio_channels_number": 1}, HD,
                 ["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "1"], id="explicit"),
    pytest.param({}, info(audio_channels=6), ["-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2"],
                 id="5.1-downmixed-to-stereo"),
    pytest.param({"audio_channels_number": 6}, info(audio_channels=6), ["-ac", "6"], id="5.1-kept-when-asked"),
    pytest.param({"output": "webm"}, HD, ["-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2"],
                 id="webm-opus-48k"),
    pytest.param({"output": "webm", "audio_sample_rate": 24000}, HD, ["-c:a", "libopus", "-b:a", "64k", "-ar", "24000"],
                 id="webm-opus-supported-rate"),
    pytest.param({"output": "webm", "audio_channels_number": 6}, HD, ["-ac", "6", "-mapping_family", "1"],
                 id="webm-opus-surround"),
    pytest.param({"output": "webm", "audio_codec": "libvorbis", "audio_bitrate": 96}, HD,
                 ["-c:a", "libvorbis", "-b:a", "96k", "-ar", "44100", "-ac", "2"], id="webm-vorbis"),
]


@pytest.mark.parametrize(("fields", "src", "expected"), AUDIO)
def test_audio(fields, src, expected):
    args = argv(fmt(**fields), src)
    assert has_seq(args, expected) and has_seq(args, ["-map", "0:v:0", "-map", "0:a:0"])


def test_libfdk_aac_falls_back_to_native_aac_with_warning():
    p = plan(fmt(audio_codec="libfdk_aac"))
    assert has_seq(p.steps[0].argv, ["-c:a", "aac"])
    assert p.notices == [Notice("adjusted", FDK, "format[0].audio_codec", 0)]


def test_webm_with_aac_uses_opus_with_warning():
    # The query model refuses aac in webm; the planner still never hands FFmpeg an impossible pair.
    f = Format.model_construct(output="webm", audio_codec="aac")
    p = plan(f)
    assert has_seq(p.steps[0].argv, ["-c:a", "libopus"])
    assert messages(p) == ["aac cannot go into a webm output; encoded with libopus"]


def test_source_without_audio_has_no_audio_stream():
    args = argv(fmt(), SILENT)
    assert "0:a:0" not in args and "-c:a" not in args
    assert has_seq(args, ["-map", "0:v:0", "-map_metadata", "-1"]) and has_seq(args, ["-an", "-movflags"])


@pytest.mark.parametrize("src", [pytest.param(HD, id="source-with-audio"), pytest.param(SILENT, id="no-audio")])
def test_audio_mute_is_a_silent_track(src):
    args = argv(fmt(audio_mute=1, duration=3), src)
    assert has_seq(args, ["-t", "3", *PIN, "-i", "file:/jobs/7/source.mp4",
                          "-f", "lavfi", "-t", "3", "-i", "anullsrc=r=44100:cl=stereo",
                          "-map", "0:v:0", "-map", "1:a:0", "-map_metadata", "-1"])
    assert has_seq(args, ["-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2", "-movflags"])


def test_audio_mute_webm_mono_silence_at_opus_rate():
    args = argv(fmt(output="webm", audio_mute=1, audio_channels_number=1))
    assert has_seq(args, ["-f", "lavfi", "-t", "10", "-i", "anullsrc=r=48000:cl=mono"])


def test_audio_mute_unknown_duration_uses_shortest():
    args = argv(fmt(audio_mute=1), info(duration=None))
    assert has_seq(args, ["-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo"])
    assert has_seq(args, ["-ac", "2", "-shortest"])


# --- clipping -------------------------------------------------------------------------------------------

CLIPS = [
    pytest.param({"start_time": 2.5}, ["-ss", "2.5", *PIN, "-i"], 7.5, id="start"),
    pytest.param({"duration": 3}, ["-t", "3", *PIN, "-i"], 3.0, id="duration"),
    pytest.param({"start_time": 4, "duration": 3}, ["-ss", "4", "-t", "3", *PIN, "-i"], 3.0, id="start-and-duration"),
    pytest.param({"start_time": 8, "duration": 5}, ["-ss", "8", "-t", "5", *PIN, "-i"], 2.0,
                 id="duration-past-the-end-is-cut"),
]


@pytest.mark.parametrize(("fields", "seq", "expected"), CLIPS)
def test_start_time_and_duration(fields, seq, expected):
    p = plan(fmt(**fields))
    assert has_seq(p.steps[0].argv, [FF, "-y", *seq]) and p.steps[0].duration_s == expected


def test_unknown_source_duration():
    assert plan(fmt(), info(duration=None)).steps[0].duration_s is None
    assert plan(fmt(duration=4), info(duration=None)).steps[0].duration_s == 4.0


def test_start_beyond_source_is_a_query_error():
    with pytest.raises(QueryError) as err:
        plan(fmt(start_time=12))
    assert err.value.field == "format[0].start_time"


# --- upscale --------------------------------------------------------------------------------------------


def query(*formats: dict, upscale: int | None = None) -> Query:
    return Query.model_validate({"source": "https://example.com/in.mp4", "upscale": upscale,
                                 "format": [{"output": "mp4", **f} for f in formats]})


UPSCALE = [
    pytest.param([{"resolution": 360}, {"resolution": 1080}], None, [(False, False), (True, False)],
                 id="larger-one-skipped"),
    pytest.param([{"size": "1920x1080"}, {"height": 1440}], None, [(False, True), (True, False)],
                 id="all-larger-first-at-source-size"),
    pytest.param([{"width": 1281}], None, [(False, True)], id="single-larger-runs-at-source-size"),
    pytest.param([{"size": "1280x720"}, {}], None, [(False, False), (False, False)], id="equal-is-not-larger"),
    pytest.param([{"resolution": 1080}, {"resolution": 2160}], 1, [(False, False), (False, False)],
                 id="upscale-on-exact-sizes"),
    pytest.param([{"rotate": 90, "height": 1280}], None, [(False, False)], id="compared-after-rotate"),
]


@pytest.mark.parametrize(("formats", "upscale", "expected"), UPSCALE)
def test_decide_upscale(formats, upscale, expected):
    decisions = decide_upscale(query(*formats, upscale=upscale), HD)
    assert [(d.skip, d.source_size) for _, d in sorted(decisions.items())] == expected


def test_decide_upscale_ignores_metadata_outputs():
    q = Query.model_validate({"source": "https://example.com/in.mp4",
                              "format": [{"output": "metadata"}, {"output": "mp4", "resolution": 1080}]})
    decisions = decide_upscale(q, HD)
    assert list(decisions) == [1] and decisions[1].source_size and not decisions[1].skip


def test_skipped_plan():
    p = plan(fmt(resolution=1080), decision=UpscaleDecision(skip=True, reason="larger"))
    assert p.skipped and p.skip_reason == "larger" and p.steps == [] and p.outputs == []
    assert p.notices == [Notice("skipped", "larger", None, 0)]


def test_source_size_plan():
    p = plan(fmt(size="1920x1080", aspect_ratio="4:3", resize_mode="crop"),
             decision=UpscaleDecision(source_size=True, reason="all larger"))
    assert opt(p.steps[0].argv, "-vf") == "scale=1280:720,setsar=1"
    assert p.notices == [Notice("source_size", "all larger", None, 0)]


def test_without_decision_a_larger_format_is_skipped_unless_upscale():
    assert plan(fmt(resolution=1080)).skipped
    p = plan(fmt(resolution=1080), upscale=True)
    assert not p.skipped and opt(p.steps[0].argv, "-vf") == "scale=1920:1080,setsar=1"


# --- other kinds and refusals ---------------------------------------------------------------------------


def test_metadata_has_no_ffmpeg_step():
    p = plan(fmt(output="metadata"))
    assert p == Plan(steps=[], outputs=[PlannedOutput(0, 0, "metadata", [WD / "metadata-0.json"])])
    p = plan(fmt(output="metadata"), probe_json={"format": {"duration": "1.0"}, "streams": []})
    assert p.write_files == {WD / "metadata-0.json": b'{\n  "format": {\n    "duration": "1.0"\n  },\n'
                                                     b'  "streams": []\n}'}


def test_unsupported_output_kind():
    with pytest.raises(UnsupportedField) as err:
        plan(fmt(output="gif"))
    assert err.value.field == "format[0].output"


def test_av1_codec_is_unsupported():
    with pytest.raises(UnsupportedField):
        plan(fmt(video_codec="libsvtav1"))


def test_source_without_video():
    with pytest.raises(QueryError):
        plan(fmt(), info(has_video=False, width=None, height=None, display_width=None, display_height=None))

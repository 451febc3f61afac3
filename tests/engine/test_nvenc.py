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


# --- the Octet fields on h264_nvenc: a contract on argv (no NVIDIA GPU on the test box; nvenc never ran here)

import pytest  # noqa: E402

from vidmill.api.octet_request import parse_job, to_query  # noqa: E402
from vidmill.engine.plan import plan_output  # noqa: E402
from vidmill.engine.probe import MediaInfo  # noqa: E402

SOURCE = MediaInfo(has_video=True, has_audio=True, duration=10.0, format_name="mov,mp4,m4a,3gp,3g2,mj2",
                   size_bytes=1_000_000, bit_rate=800_000, width=1280, height=720, display_width=1280,
                   display_height=720, fps=25.0, video_codec="h264", pix_fmt="yuv420p", audio_codec="aac",
                   audio_channels=2, audio_sample_rate=48000)
# what `-h encoder=h264_nvenc` lists: this box's FFmpeg 9 (p1-p7, -tune, -multipass; no hp/hq/ll* presets)
# and an older build (FFmpeg 4.x before SDK 10: the named presets, -rc vbr_hq/cbr_hq, no -multipass)
NEW = {"-preset": frozenset({"slow", "medium", "fast", "p1", "p2", "p3", "p4", "p5", "p6", "p7"}),
       "-tune": frozenset({"hq", "ll", "ull", "lossless"}), "-rc": frozenset({"constqp", "vbr", "cbr"}),
       "-multipass": frozenset({"disabled", "qres", "fullres"}), "-cq": frozenset(), "-qp": frozenset(),
       "-coder": frozenset({"default", "auto", "cabac", "cavlc", "ac", "vlc"})}
OLD = {"-preset": frozenset({"default", "slow", "medium", "fast", "hp", "hq", "bd", "ll", "llhq", "llhp"}),
       "-rc": frozenset({"constqp", "vbr", "cbr", "vbr_hq", "cbr_hq"}), "-cq": frozenset(), "-qp": frozenset(),
       "-coder": frozenset({"default", "auto", "cabac", "cavlc", "ac", "vlc"})}


def _plan(output: dict, build=NEW, hardware=True):
    job = {"input": {"url": "https://a.example/in.mp4"},
           "destination": {"provider": "s3", "bucket": "b-1", "creds": {"access_key_id": "k", "secret_access_key": "s"}},
           "outputs": [{"codec": "h264", "resolution": "640x360", "dest_path": "a.mp4", **output}]}
    query, _ = to_query(parse_job(job))
    return plan_output(query.format[0], source=Path("/w/source"), info=SOURCE, workdir=Path("/w"),
                       ffmpeg="ffmpeg", index=0, upscale=True,
                       hardware={"h264_nvenc": build} if hardware else None)


def _video(argv: list[str]) -> list[str]:
    """argv from -c:v up to the keyframe options (what the encoder class chose)."""
    return argv[argv.index("-c:v"):argv.index("-g")]


from pathlib import Path  # noqa: E402

RC = ["-i_qfactor", "1", "-i_qoffset", "0", "-b_qfactor", "1", "-b_qoffset", "0"]


@pytest.mark.parametrize("output, build, expected", [
    pytest.param({"rc": "constqp", "qp": 30}, NEW,
                 ["-preset", "medium", "-pix_fmt", "yuv420p", "-rc", "constqp", "-qp", "30", *RC], id="constqp"),
    pytest.param({"rc": "cbr", "bitrate_kbps": 1500}, NEW,
                 ["-preset", "medium", "-pix_fmt", "yuv420p", "-rc", "cbr", "-b:v", "1500k", "-maxrate", "1500k",
                  "-bufsize", "1500k"], id="cbr"),
    pytest.param({"rc": "cbr_hq", "bitrate_kbps": 800}, NEW,
                 ["-preset", "medium", "-pix_fmt", "yuv420p", "-rc", "cbr", "-multipass", "fullres", "-b:v", "800k",
                  "-maxrate", "800k", "-bufsize", "800k"], id="cbr_hq"),
    pytest.param({"rc": "cbr_hq", "bitrate_kbps": 800}, OLD,
                 ["-preset", "medium", "-pix_fmt", "yuv420p", "-rc", "cbr_hq", "-b:v", "800k", "-maxrate", "800k",
                  "-bufsize", "800k"], id="cbr_hq-old-build"),
    pytest.param({"rc": "vbr", "bitrate_kbps": 2000}, NEW,
                 ["-preset", "medium", "-pix_fmt", "yuv420p", "-rc", "vbr", "-b:v", "2000k"], id="vbr"),
    pytest.param({"rc": "vbr_hq", "bitrate_kbps": 700}, NEW,
                 ["-preset", "medium", "-pix_fmt", "yuv420p", "-rc", "vbr", "-multipass", "fullres", "-b:v", "700k"],
                 id="vbr_hq"),
    pytest.param({"rc": "vbr_hq", "bitrate_kbps": 700}, OLD,
                 ["-preset", "medium", "-pix_fmt", "yuv420p", "-rc", "vbr_hq", "-b:v", "700k"], id="vbr_hq-old-build"),
    pytest.param({"rc": "vbr", "cq": 25}, NEW,
                 ["-preset", "medium", "-pix_fmt", "yuv420p", "-rc", "vbr", "-cq", "25", "-b:v", "0"], id="vbr-cq"),
    pytest.param({"rc": "vbr", "cq": 25, "bitrate_kbps": 900}, NEW,
                 ["-preset", "medium", "-pix_fmt", "yuv420p", "-rc", "vbr", "-cq", "25", "-b:v", "900k",
                  "-maxrate", "900k", "-bufsize", "1800k"], id="vbr-cq-capped"),
    pytest.param({}, NEW, ["-preset", "medium", "-pix_fmt", "yuv420p", "-rc", "vbr", "-cq", "23", "-b:v", "0"],
                 id="nothing-asked"),
    pytest.param({"preset": "llhq", "profile": "main", "level": "4.1", "coder": "cavlc", "qp": 20}, NEW,
                 ["-preset", "p7", "-tune", "ll", "-profile:v", "main", "-level", "4.1", "-pix_fmt", "yuv420p",
                  "-rc", "constqp", "-qp", "20", *RC], id="params"),
])
def test_octet_fields_on_nvenc(output, build, expected):
    plan = _plan(output, build)
    (step,) = plan.steps  # NVENC's two passes run inside one FFmpeg run
    video = _video(step.argv)
    assert video[:2] == ["-c:v", "h264_nvenc"] and plan.hardware_encoder == "h264_nvenc"
    assert video[2:] == expected
    assert "-crf" not in step.argv and "-sc_threshold" not in step.argv
    if output.get("coder"):
        assert step.argv[step.argv.index("-coder") + 1] == "cavlc"


@pytest.mark.parametrize("preset, new, old", [
    ("slow", ["slow"], ["slow"]), ("medium", ["medium"], ["medium"]), ("fast", ["fast"], ["fast"]),
    ("hp", ["p1", "-tune", "hq"], ["hp"]), ("hq", ["p7", "-tune", "hq"], ["hq"]),
    ("ll", ["p4", "-tune", "ll"], ["ll"]), ("llhq", ["p7", "-tune", "ll"], ["llhq"]),
    ("llhp", ["p1", "-tune", "ll"], ["llhp"]),
])
def test_presets_per_build(preset, new, old):
    for build, expected in ((NEW, new), (OLD, old)):
        video = _video(_plan({"preset": preset}, build).steps[0].argv)
        assert video[2:3 + len(expected)] == ["-preset", *expected]


def test_this_ffmpeg_lists_what_the_new_build_table_assumes():
    """The NEW table above is what this box's FFmpeg really lists (read from ``-h encoder=h264_nvenc``)."""
    if not ffmpeg.has_encoder("h264_nvenc"):
        pytest.fail("this FFmpeg has no h264_nvenc to read options from")
    build = ffmpeg.encoder_options("h264_nvenc")
    for option, values in NEW.items():
        assert values <= build[option], (option, build.get(option))
    assert not {"hp", "hq", "ll", "llhq", "llhp"} & build["-preset"]  # gone in this build: the aliases are used
    assert not {"vbr_hq", "cbr_hq"} & build["-rc"]


def test_without_working_nvenc_or_without_asking_x264_runs():
    for plan in (_plan({"rc": "constqp", "qp": 30}, hardware=False),):
        assert _video(plan.steps[0].argv)[:2] == ["-c:v", "libx264"] and plan.hardware_encoder is None
    two = _plan({"rc": "vbr_hq", "bitrate_kbps": 700}, hardware=False)
    assert len(two.steps) == 2  # x264's two passes are two runs


def test_detection_fails_here_and_the_setting_turns_it_off():
    """This box has no NVIDIA GPU: the trial fails, so no hardware encoder is offered (and "off" never asks)."""
    works, why = ffmpeg.nvenc_status()
    assert works is False and why
    assert ffmpeg.hardware_encoders() == {}
    assert ffmpeg.hardware_encoders(enabled=False) == {}

"""Octet v0 job -> vidmill query: every NVENC-style name onto what x264 does with the same meaning."""

from __future__ import annotations

import pytest

from vidmill.api.octet_request import parse_job, to_query
from vidmill.core.query import check_supported
from vidmill.errors import QueryError


def job(**output) -> dict:
    out = {"codec": "h264", "resolution": "1280x720", "dest_path": "out/vid_720.mp4", **output}
    return {"input": {"url": "https://media.example.com/in.mp4"},
            "destination": {"provider": "s3", "region": "us-east-1", "bucket": "my-bucket",
                            "creds": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t/key"}},
            "outputs": [out]}


def fmt(data: dict, **kw) -> dict:
    query, _ = to_query(parse_job(data), **kw)
    return query.format[0].model_dump(mode="json", exclude_none=True)


def test_seed_sample_request():
    """The seed's own sample (numbers as strings, as it sends them)."""
    data = job(bitrate_kbps="5000", preset="slow", profile="high", rc="vbr_hq", level="4.1", coder="cabac",
               resolution="1920x1080", dest_path="full/path/to/vid_1080.mp4")
    data["callback"] = "https://hooks.example.com/octet"
    query, shown = to_query(parse_job(data))
    f = query.format[0].model_dump(mode="json", exclude_none=True)
    vcp = f.pop("video_codec_parameters")
    dest = f.pop("destination")
    assert f == {"output": "mp4", "video_codec": "libx264", "size": "1920x1080", "bitrate": 5000, "two_pass": True,
                 "profile": "high", "no_audio": True, "hardware": True, "hardware_preset": "slow"}
    assert vcp == {"preset": "slow", "level": "4.1", "coder": 1}
    assert dest == [{"url": "s3://s3.us-east-1.amazonaws.com/my-bucket/full/path/to/vid_1080.mp4",
                     "key": "AKIAEXAMPLE", "secret": "s3cr3t/key"}]
    assert query.source == "https://media.example.com/in.mp4"
    assert query.callback_url == "https://hooks.example.com/octet"
    assert query.upscale is True
    assert shown == {"bucket": "my-bucket", "region": "us-east-1", "include_audio": False,
                     "outputs": [{"dest_path": "full/path/to/vid_1080.mp4", "resolution": "1920x1080",
                                  "bitrate_kbps": 5000}]}
    assert "s3cr3t" not in str(shown)


@pytest.mark.parametrize("resolution, fields", [
    pytest.param("1920x1080", {"size": "1920x1080"}, id="both"),
    pytest.param("-1x1080", {"height": 1080}, id="height-keeps-aspect"),
    pytest.param("640x-1", {"width": 640}, id="width-keeps-aspect"),
    pytest.param("-1x-1", {}, id="source-size"),
])
def test_resolution(resolution, fields):
    f = fmt(job(resolution=resolution))
    assert {k: f[k] for k in ("size", "width", "height") if k in f} == fields


@pytest.mark.parametrize("output, rate, vcp", [
    pytest.param({"rc": "constqp", "qp": 30}, {"constant_qp": 30}, {}, id="constqp"),
    pytest.param({"qp": 28}, {"constant_qp": 28}, {}, id="qp-alone-is-constqp"),
    pytest.param({"rc": "constqp"}, {"constant_qp": 23}, {}, id="constqp-default-qp"),
    pytest.param({"rc": "constqp", "qp": -1}, {"constant_qp": 23}, {}, id="constqp-qp-auto"),
    pytest.param({"rc": "cbr", "bitrate_kbps": 1500}, {"bitrate": 1500, "constant_bitrate": True}, {},
                 id="cbr-vbv"),
    pytest.param({"rc": "cbr_hq", "bitrate_kbps": 800}, {"bitrate": 800, "two_pass": True,
                                                          "constant_bitrate": True}, {}, id="cbr_hq-two-pass"),
    pytest.param({"rc": "vbr", "bitrate_kbps": 2000}, {"bitrate": 2000}, {}, id="vbr-abr"),
    pytest.param({"rc": "vbr", "cq": 25}, {"quality": 25}, {}, id="vbr-cq"),
    pytest.param({"rc": "vbr", "cq": 25, "bitrate_kbps": 900}, {"quality": 25, "bitrate": 900}, {},
                 id="vbr-cq-capped"),
    pytest.param({"cq": 19}, {"quality": 19}, {}, id="cq-alone-is-vbr"),
    pytest.param({"rc": "vbr_hq", "bitrate_kbps": 700}, {"bitrate": 700, "two_pass": True}, {}, id="vbr_hq"),
    pytest.param({}, {}, {}, id="no-rate-x264-default-crf"),
])
def test_rate_control_keeps_its_meaning(output, rate, vcp):
    f = fmt(job(**output))
    assert {k: f[k] for k in ("bitrate", "quality", "two_pass", "constant_qp", "constant_bitrate") if k in f} == rate
    assert f.get("video_codec_parameters", {}) == vcp


@pytest.mark.parametrize("name, x264", [("slow", "slow"), ("medium", "medium"), ("fast", "fast"), ("hq", "medium"),
                                        ("hp", "veryfast"), ("ll", "fast"), ("llhq", "medium"), ("llhp", "veryfast")])
def test_presets(name, x264):
    f = fmt(job(preset=name))
    assert f["video_codec_parameters"] == {"preset": x264}
    assert (f["hardware"], f["hardware_preset"]) == (True, name)  # NVENC's own name, where it runs


@pytest.mark.parametrize("algo, flags", [("nn", "neighbor"), ("linear", "bilinear"), ("cubic", "bicubic"),
                                         ("lanczos", "lanczos")])
def test_scalers(algo, flags):
    assert fmt(job(scale_interp_algo=algo))["video_codec_parameters"] == {"sws_flags": flags}


@pytest.mark.parametrize("level, value", [("auto", None), ("4", "4.0"), (4, "4.0"), ("4.2", "4.2"), ("5", "5.0"),
                                          ("5.1", "5.1")])
def test_levels(level, value):
    assert fmt(job(level=level)).get("video_codec_parameters", {}).get("level") == value


def test_coder_and_audio_opt_in():
    assert fmt(job(coder="cavlc"))["video_codec_parameters"] == {"coder": 0}
    data = job()
    data["include_audio"] = True
    assert "no_audio" not in fmt(data)


def test_configured_s3_endpoint():
    f = fmt(job(), s3_endpoint="http://127.0.0.1:9000")
    assert f["destination"][0]["url"] == "s3://127.0.0.1:9000/my-bucket/out/vid_720.mp4"


def test_the_query_passes_the_support_policy_except_destinations_land_later():
    query, _ = to_query(parse_job(job(rc="cbr", bitrate_kbps=1000, preset="hq", scale_interp_algo="lanczos",
                                      profile="main", level="4.1", coder="cabac")))
    # no_audio is allowed for this dialect only; a Qencode request carrying it is refused
    from vidmill.core.query.models import Query
    q = Query.model_validate({"source": "https://a.example/x.mp4", "format": [{"output": "mp4", "no_audio": 1}]})
    with pytest.raises(QueryError, match="no_audio is not part of the Qencode API"):
        check_supported(q)
    check_supported(q, allow=frozenset({"no_audio"}))
    assert query.format[0].no_audio is True
    # so are the rate and encoder fields Octet sets
    for field, value in (("constant_qp", 30), ("constant_bitrate", 1), ("hardware", 1), ("hardware_preset", "llhq")):
        q = Query.model_validate({"source": "https://a.example/x.mp4", "format": [{"output": "mp4", field: value}]})
        with pytest.raises(QueryError, match=f"format\\[0\\].{field}: {field} is not part of the Qencode API"):
            check_supported(q)


@pytest.mark.parametrize("output, message", [
    pytest.param({"codec": "hevc"}, "outputs[0].codec: HEVC support is not yet publicly available", id="hevc"),
    pytest.param({"codec": "vp9"}, "outputs[0].codec:", id="codec"),
    pytest.param({"resolution": "1920*1080"}, "outputs[0].resolution:", id="resolution-shape"),
    pytest.param({"resolution": "8x8"}, "outputs[0].resolution: width and height", id="resolution-too-small"),
    pytest.param({"dest_path": "../escape.mp4"}, "outputs[0].dest_path: must be a relative path", id="dotdot"),
    pytest.param({"dest_path": "/abs.mp4"}, "outputs[0].dest_path: must be a relative path", id="absolute"),
    pytest.param({"dest_path": "a//b.mp4"}, "outputs[0].dest_path: must be a relative path", id="empty-part"),
    pytest.param({"preset": "p7"}, "outputs[0].preset:", id="preset"),
    pytest.param({"rc": "cbr"}, "outputs[0].bitrate_kbps: rc cbr needs a bitrate", id="cbr-no-bitrate"),
    pytest.param({"rc": "cbr", "bitrate_kbps": 900, "cq": 20}, "outputs[0].cq:", id="cbr-cq"),
    pytest.param({"rc": "constqp", "bitrate_kbps": 900}, "outputs[0].bitrate_kbps: rc constqp", id="cqp-rate"),
    pytest.param({"rc": "vbr", "qp": 20}, "outputs[0].qp:", id="vbr-qp"),
    pytest.param({"cq": 52}, "outputs[0].cq:", id="cq-range"),
    pytest.param({"qp": -2}, "outputs[0].qp:", id="qp-range"),
    pytest.param({"bitrate_kbps": "lots"}, "outputs[0].bitrate_kbps:", id="bitrate"),
    pytest.param({"tune": "film"}, "outputs[0].tune: unknown field", id="unknown"),
])
def test_refused_outputs(output, message):
    with pytest.raises(QueryError) as exc:
        to_query(parse_job(job(**output)))
    assert exc.value.message.startswith(message), exc.value.message


@pytest.mark.parametrize("change, message", [
    pytest.param({"input": {"url": "file:///etc/passwd"}}, "input.url:", id="input-scheme"),
    pytest.param({"destination": {"provider": "gcs"}}, "destination.provider", id="provider"),
    pytest.param({"outputs": []}, "outputs: must not be empty", id="no-outputs"),
    pytest.param({"callback": "ftp://x.example/"}, "callback:", id="callback-scheme"),
])
def test_refused_jobs(change, message):
    data = job()
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key == "destination" else value
    with pytest.raises(QueryError) as exc:
        to_query(parse_job(data))
    assert exc.value.message.startswith(message), exc.value.message


def _argv(data: dict) -> list[str]:
    from pathlib import Path

    from vidmill.engine.plan import plan_output
    from vidmill.engine.probe import MediaInfo

    src = MediaInfo(has_video=True, has_audio=True, duration=10.0, format_name="mov,mp4,m4a,3gp,3g2,mj2",
                    size_bytes=1_000_000, bit_rate=800_000, width=1280, height=720, display_width=1280,
                    display_height=720, fps=25.0, video_codec="h264", pix_fmt="yuv420p", audio_codec="aac",
                    audio_channels=2, audio_sample_rate=48000)
    query, _ = to_query(parse_job(data))
    plan = plan_output(query.format[0], source=Path("/w/source"), info=src, workdir=Path("/w"), ffmpeg="ffmpeg",
                       index=0, upscale=True)
    return plan.steps[-1].argv


def _has(args: list[str], seq: list[str]) -> bool:
    return any(args[i:i + len(seq)] == seq for i in range(len(args) - len(seq) + 1))


@pytest.mark.parametrize("output, expected", [
    pytest.param({"rc": "constqp", "qp": 30}, [["-qp", "30", "-i_qfactor", "1", "-b_qfactor", "1"]], id="constqp"),
    pytest.param({"rc": "cbr", "bitrate_kbps": 1500},
                 [["-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "1500k"]], id="cbr"),
    pytest.param({"rc": "vbr", "cq": 24, "bitrate_kbps": 900},
                 [["-crf", "24", "-maxrate", "900k", "-bufsize", "1800k"]], id="vbr-cq"),
    pytest.param({"preset": "hp", "coder": "cavlc", "scale_interp_algo": "lanczos", "level": "4.1"},
                 [["-preset", "veryfast"], ["-coder", "0"], ["-sws_flags", "lanczos"], ["-level:v", "4.1"]],
                 id="params"),
])
def test_the_mapping_reaches_ffmpeg(output, expected):
    args = _argv(job(**output))
    assert args[args.index("-c:v") + 1] == "libx264"
    for seq in expected:
        assert _has(args, seq), (seq, args)
    assert "-an" in args and "-c:a" not in args  # audio left out by default
    if output.get("rc") in ("constqp", "cbr"):
        assert "-crf" not in args and "-qmin" not in args and "-qmax" not in args


def test_audio_kept_on_opt_in():
    data = job()
    data["include_audio"] = True
    args = _argv(data)
    assert "-an" not in args and _has(args, ["-map", "0:a:0"])

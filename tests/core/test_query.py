"""The Qencode v1 query models: parsing, normalization, refusals, and the support policy."""

import json
from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError

from vidmill.core.query import support as qmod
from vidmill.core.query import (
    CencDrm,
    Destination,
    Encryption,
    Format,
    FpsDrm,
    Inject360,
    Logo,
    Query,
    StitchItem,
    Stream,
    SubtitleSource,
    Subtitles,
    VideoCodecParameters,
    check_supported,
    parse_query,
)
from vidmill.errors import QueryError, QueryMissing, UnsupportedField

SRC = "https://your-server.com/video.mp4"


def wrap(query: dict[str, Any]) -> str:
    """What the Python SDK sends: json.dumps with its default ", " / ": " separators."""
    return json.dumps({"query": query})


def one(**fields: Any) -> str:
    """A query with the default source and one mp4 format carrying ``fields``."""
    return wrap({"source": SRC, "format": [{"output": "mp4", **fields}]})


def refused(raw: str | bytes | None) -> QueryError:
    with pytest.raises(QueryError) as info:
        parse_query(raw)
    return info.value


def unsupported(raw: str) -> UnsupportedField:
    q = parse_query(raw)
    with pytest.raises(UnsupportedField) as info:
        check_supported(q)
    return info.value


# --------------------------------------------------------------------------------------------------
# Valid queries (seed 001 examples and qencode-fields.md "how real queries use them")
# --------------------------------------------------------------------------------------------------

SEED_START_ENCODE2 = """{"query": {
"source": "https://your-server.com/video.mp4",
"format": [
{
"output": "mp4",
"destination": {
"url":"s3://us-west.s3.qencode.com/yourbucket/output.mp4",
"key":"abcde12345",
"secret":"abcde12345",
"permissions": "public-read"
},
"framerate": "29.97",
"keyframe": "25",
"size": "360x240",
"start_time": 10,
"duration": 20,
"audio_bitrate": 64
}
]
}
}"""

SEED_SDK = """
{"query": {
"source": "https://your-server.com/video.mp4",
"format": [
{
"output": "mp4",
"size": "320x240",
"video_codec": "libx264"
}
]
}
}
"""

HLS_LADDER = {
    "encoder_version": 2,
    "source": SRC,
    "format": [{
        "output": "advanced_hls",
        "destination": {"url": "s3://us-west.s3.qencode.com/bucket/hls/", "key": "k", "secret": "s",
                        "permissions": "public-read"},
        "optimize_bitrate": 1, "min_crf": 18, "max_crf": 30,
        "stream": [
            {"resolution": "1080", "framerate": "30", "keyframe": "60", "video_codec": "libx264",
             "audio_codec": "libfdk_aac", "audio_bitrate": "128", "tag": "1080p"},
            {"resolution": 720, "framerate": "30", "keyframe": "60", "video_codec": "libx264",
             "audio_codec": "libfdk_aac", "audio_bitrate": 96, "chunklist_name": "chunks.m3u8",
             "logo": {"source": "https://cdn.example.com/logo.png", "x": 10, "y": 10, "opacity": 0.5}},
        ],
        "segment_duration": 6, "fmp4": 1, "separate_audio": 1, "playlist_name": "master.m3u8",
        "encryption": {"key": "00112233445566778899aabbccddeeff", "iv": "00112233445566778899AABBCCDDEEFF",
                       "key_url": "https://keys.example.com/k"},
    }],
}

VALID = [
    pytest.param(SEED_START_ENCODE2, id="seed-start_encode2-curl"),
    pytest.param(SEED_SDK, id="seed-sdk-custom_start"),
    pytest.param(SEED_SDK.replace(SRC, "tus:6a0b4c3e-1d2f-4a5b-9c8d-7e6f5a4b3c2d"), id="seed-tus-upload"),
    pytest.param(wrap(HLS_LADDER), id="hls-ladder-libfdk_aac-string-numbers"),
    pytest.param(wrap({"callback_url": "http://your-server.com/task_callback_endpoint", "source": SRC,
                       "format": [{"output": "metadata", "metadata_version": "4.1.5"}]}), id="callback-metadata"),
    pytest.param(wrap({"encoder_version": 1, "stitch": [SRC, {"url": "s3://s3.example.com/b/k.mp4",
                                                               "start_time": "1.5", "duration": 10}],
                       "format": [{"output": "mp4"}]}), id="stitch-encoder_version-1"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "speech_to_text", "destination": {
        "url": "s3://s3.example.com/bucket/stt/"}, "mode": "accuracy", "language": "en",
        "translate_languages": ["es", "de"], "json": 0, "srt_name": "subs.srt", "start_time": 5, "duration": 30}]}),
        id="speech_to_text"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "thumbnails", "interval": 10, "image_format": "jpg",
                                                  "quality": 90, "sprite": 1, "columns": 5, "width": 160,
                                                  "destination": {"url": "s3://h/b/sprite.jpg"}}]}),
                 id="thumbnails-sprite-jpg-quality"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "thumbnail", "time": 0.5, "image_format": "png"}]}),
                 id="thumbnail"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_dash", "cenc_drm": {
        "key": "00112233445566778899aabbccddeeff", "key_id": "00112233-4455-6677-8899-aabbccddeeff",
        "iv": "0011223344556677", "pssh": "AAAAQXBzc2gAAAAA", "la_url": "https://drm.example.com/la"},
        "fps_drm": {"key": "00112233445566778899aabbccddeeff", "iv": "00112233445566778899aabbccddeeff",
                    "key_url": "skd://fps.ezdrm.com/;abcd"}, "stream": [{"size": "1280x720", "bitrate": 3000}]}]}),
        id="dash-drm"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "mp4", "subtitles": {"sources": [
        {"source": "https://cdn.example.com/en.srt", "language": "en"}], "copy": 1},
        "logo": [{"source": "https://cdn.example.com/l.png", "start_time": 0, "duration": 5}]}]}), id="subtitles-logo"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "repack", "audio_copy": 0, "subtitles_copy": "1"}]}),
                 id="repack"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "mp4", "inject_360_metadata": {
        "projection": "equirectangular", "stereo": "top-bottom", "full_width": 3840}, "keep_360_metadata": 1}]}),
        id="inject-360"),
    pytest.param(wrap({"source": "https://bucket.s3.amazonaws.com/v.mp4?X-Amz-Signature=ab%2Fcd&X-Amz-Expires=600",
                       "format": [{"output": "webm", "video_codec": "libvpx-vp9", "audio_codec": "libopus",
                                   "color_space": "bt709", "color_range": 1, "audio_pan": {"c0": "c2", "c1": "c0"}}]}),
        id="presigned-webm-opus-colour"),
    pytest.param(json.dumps({"query": {"source": SRC, "format": [{"output": "mp4"}]}}).encode(), id="bytes"),
]


@pytest.mark.parametrize("raw", VALID)
def test_valid_queries_parse(raw: str | bytes) -> None:
    q = parse_query(raw)
    assert isinstance(q, Query)
    assert q.format and all(isinstance(f, Format) for f in q.format)


def test_seed_start_encode2_values_are_normalized() -> None:
    fmt = parse_query(SEED_START_ENCODE2).format[0]
    assert fmt.output == "mp4"
    assert fmt.framerate == "29.97" and fmt.framerate_value == "29.97"
    assert fmt.keyframe == "25" and fmt.keyframe_spec == (25, "frames")
    assert fmt.size == "360x240" and fmt.size_wh == (360, 240)
    assert fmt.start_time == 10.0 and fmt.duration == 20.0
    assert fmt.audio_bitrate == 64
    assert fmt.destination == [Destination(url="s3://us-west.s3.qencode.com/yourbucket/output.mp4",
                                           key="abcde12345", secret="abcde12345", permissions="public-read")]


def test_ladder_streams_share_the_rendition_fields_and_properties() -> None:
    fmt = parse_query(wrap(HLS_LADDER)).format[0]
    first, second = fmt.stream
    assert isinstance(first, Stream)
    assert (first.resolution, first.keyframe_spec, first.framerate_value) == (1080, (60, "frames"), "30")
    assert (first.audio_codec, first.audio_bitrate, first.tag) == ("libfdk_aac", 128, "1080p")
    assert second.audio_bitrate == 96 and second.chunklist_name == "chunks.m3u8"
    assert second.logo == [Logo(source="https://cdn.example.com/logo.png", x=10, y=10, opacity=0.5)]
    assert fmt.optimize_bitrate is True and fmt.segment_duration == 6.0 and fmt.fmp4 is True
    assert fmt.encryption == Encryption(key="00112233445566778899aabbccddeeff",
                                        iv="00112233445566778899aabbccddeeff", key_url="https://keys.example.com/k")


def test_stitch_urls_become_items() -> None:
    q = parse_query(VALID[5].values[0])
    assert q.source is None and q.encoder_version == 1
    assert q.stitch == [StitchItem(url=SRC), StitchItem(url="s3://s3.example.com/b/k.mp4", start_time=1.5,
                                                         duration=10.0)]


def test_wire_names_that_clash_with_pydantic_live_under_an_underscore() -> None:
    stt = parse_query(VALID[6].values[0]).format[0]
    assert stt.json_ is False and stt.translate_languages == ["es", "de"]
    subs = parse_query(VALID[10].values[0]).format[0].subtitles
    assert subs == Subtitles(sources=[SubtitleSource(source="https://cdn.example.com/en.srt", language="en")], copy=1)
    assert subs.copy_ is True
    assert "json" in stt.model_dump(by_alias=True) and "copy" in subs.model_dump(by_alias=True)


def test_drm_values_are_normalized() -> None:
    fmt = parse_query(VALID[9].values[0]).format[0]
    assert fmt.cenc_drm == CencDrm(key="00112233445566778899aabbccddeeff", key_id="00112233445566778899aabbccddeeff",
                                   iv="0011223344556677", pssh="AAAAQXBzc2gAAAAA", la_url="https://drm.example.com/la")
    assert isinstance(fmt.fps_drm, FpsDrm) and fmt.fps_drm.key_url == "skd://fps.ezdrm.com/;abcd"
    assert parse_query(VALID[12].values[0]).format[0].inject_360_metadata == Inject360(
        projection="equirectangular", stereo="top-bottom", full_width=3840)


# --------------------------------------------------------------------------------------------------
# Loose wire types are normalized
# --------------------------------------------------------------------------------------------------

NORMALIZED = [
    pytest.param({"keyframe": "60"}, "keyframe_spec", (60, "frames"), id="keyframe-string-frames"),
    pytest.param({"keyframe": 90}, "keyframe_spec", (90, "frames"), id="keyframe-int"),
    pytest.param({"keyframe": 48.0}, "keyframe_spec", (48, "frames"), id="keyframe-integral-float"),
    pytest.param({"keyframe": "3s"}, "keyframe_spec", (3.0, "seconds"), id="keyframe-seconds"),
    pytest.param({"keyframe": "0.5s"}, "keyframe_spec", (0.5, "seconds"), id="keyframe-half-second"),
    pytest.param({"framerate": "30"}, "framerate_value", "30", id="framerate-string"),
    pytest.param({"framerate": 25}, "framerate_value", "25", id="framerate-int"),
    pytest.param({"framerate": 29.97}, "framerate_value", "29.97", id="framerate-float"),
    pytest.param({"framerate": "30000/1001"}, "framerate_value", "30000/1001", id="framerate-rational"),
    pytest.param({"framerate": "30000/1001"}, "framerate_fraction", Fraction(30000, 1001), id="framerate-fraction"),
    pytest.param({"aspect_ratio": "16:9"}, "aspect_ratio_value", 16 / 9, id="aspect-colon"),
    pytest.param({"aspect_ratio": "1.77"}, "aspect_ratio_value", 1.77, id="aspect-decimal-string"),
    pytest.param({"aspect_ratio": 1.33}, "aspect_ratio_value", 1.33, id="aspect-number"),
    pytest.param({"size": "1280x720"}, "size_wh", (1280, 720), id="size"),
    pytest.param({"size": "1280X720"}, "size", "1280x720", id="size-capital-x"),
    pytest.param({"resolution": "720"}, "resolution", 720, id="resolution-string"),
    pytest.param({"quality": "23"}, "quality", 23, id="quality-string"),
    pytest.param({"bitrate": "2500"}, "bitrate", 2500, id="bitrate-string"),
    pytest.param({"rotate": "90"}, "rotate", 90, id="rotate-string"),
    pytest.param({"audio_sample_rate": "48000"}, "audio_sample_rate", 48000, id="sample-rate-string"),
    pytest.param({"audio_channels_number": "6"}, "audio_channels_number", 6, id="channels-string"),
    pytest.param({"start_time": "10.5"}, "start_time", 10.5, id="start-time-string"),
    pytest.param({"two_pass": 1}, "two_pass", True, id="flag-int-1"),
    pytest.param({"two_pass": "1"}, "two_pass", True, id="flag-str-1"),
    pytest.param({"two_pass": "0"}, "two_pass", False, id="flag-str-0"),
    pytest.param({"two_pass": True}, "two_pass", True, id="flag-true"),
    pytest.param({"deinterlace": False}, "deinterlace", False, id="flag-false"),
    pytest.param({"audio_mute": "true"}, "audio_mute", True, id="flag-str-true"),
    pytest.param({"color_primaries": "1"}, "color_primaries", "1", id="colour-preserve"),
    pytest.param({"profile": "high"}, "profile", "high", id="profile"),
    pytest.param({}, "size_wh", None, id="size-absent"),
    pytest.param({}, "keyframe_spec", None, id="keyframe-absent"),
    pytest.param({}, "framerate_value", None, id="framerate-absent"),
    pytest.param({}, "aspect_ratio_value", None, id="aspect-absent"),
]


@pytest.mark.parametrize(("fields", "attr", "expected"), NORMALIZED)
def test_loose_wire_values_are_normalized(fields: dict[str, Any], attr: str, expected: Any) -> None:
    fmt = parse_query(one(**fields)).format[0]
    assert getattr(fmt, attr) == expected
    assert type(getattr(fmt, attr)) is type(expected)


@pytest.mark.parametrize(("wire", "level"), [
    pytest.param(30, "3.0", id="int-30"), pytest.param("41", "4.1", id="str-41"),
    pytest.param("4.1", "4.1", id="dotted"), pytest.param(4.2, "4.2", id="float"),
    pytest.param(5, "5.0", id="single-digit"),
])
def test_codec_level_is_normalized(wire: Any, level: str) -> None:
    params = parse_query(one(video_codec_parameters={"level": wire})).format[0].video_codec_parameters
    assert params.level == level


def test_codec_parameters_parse() -> None:
    params = parse_query(one(video_codec="libx264", video_codec_parameters={
        "vprofile": "high", "level": 41, "coder": "1", "flags2": "+bpyramid+wpred+mixed_refs+dct8×8-fastpskip",
        "partitions": "+partp8x8+partb8x8+parti4x4", "directpred": 1, "me_method": "umh", "subq": "7",
        "trellis": 1, "refs": 3, "cmp": "satd", "me_range": 16, "sc_threshold": 40, "i_qfactor": 0.71,
        "b_strategy": 1, "qcomp": "0.6", "qmin": 10, "qmax": 51, "qdiff": 4, "max_rate": 5, "min_rate": 1,
        "bufsize": "10", "sws_flags": "lanczos", "preset": "slow", "flags": "+loop+global_header",
        "rc_lookahead": 40})).format[0].video_codec_parameters
    assert isinstance(params, VideoCodecParameters)
    assert params.flags2 == "+bpyramid+wpred+mixed_refs+dct8x8-fastpskip"
    assert (params.coder, params.subq, params.qcomp, params.bufsize, params.cmp) == (1, 7, 0.6, 10.0, "satd")


# --------------------------------------------------------------------------------------------------
# Refusals: every rule names its field
# --------------------------------------------------------------------------------------------------

BAD_FORMAT = [
    # frame
    pytest.param({"size": "1280*720"}, "format[0].size", "must look like WIDTHxHEIGHT, e.g. 1280x720", id="size-shape"),
    pytest.param({"size": "8x8"}, "format[0].size", "between 16 and 8192", id="size-too-small"),
    pytest.param({"size": "10000x720"}, "format[0].size", "between 16 and 8192", id="size-too-big"),
    pytest.param({"size": 1280}, "format[0].size", "must be a string", id="size-number"),
    pytest.param({"width": 15}, "format[0].width", "between 16 and 8192", id="width-small"),
    pytest.param({"height": 8193}, "format[0].height", "between 16 and 8192", id="height-big"),
    pytest.param({"width": "wide"}, "format[0].width", "must be an integer", id="width-text"),
    pytest.param({"width": 720.5}, "format[0].width", "must be an integer", id="width-fraction"),
    pytest.param({"width": True}, "format[0].width", "not true/false", id="width-bool"),
    pytest.param({"resolution": "99999"}, "format[0].resolution", "between 16 and 8192", id="resolution-big"),
    pytest.param({"rotate": 45}, "format[0].rotate", "0, 90, 180 or 270", id="rotate-45"),
    pytest.param({"rotate": -90}, "format[0].rotate", "between 0 and 270", id="rotate-negative"),
    pytest.param({"aspect_ratio": "wide"}, "format[0].aspect_ratio", '"16:9"', id="aspect-text"),
    pytest.param({"aspect_ratio": "16:0"}, "format[0].aspect_ratio", "divide by zero", id="aspect-zero"),
    pytest.param({"aspect_ratio": "100:1"}, "format[0].aspect_ratio", "between 0.1 and 10", id="aspect-absurd"),
    pytest.param({"resize_mode": "stretch"}, "format[0].resize_mode", "scale, crop", id="resize-mode"),
    pytest.param({"framerate": "0"}, "format[0].framerate", "above 0", id="framerate-zero"),
    pytest.param({"framerate": "241"}, "format[0].framerate", "at most 240", id="framerate-big"),
    pytest.param({"framerate": "30000/0"}, "format[0].framerate", "divide by zero", id="framerate-div0"),
    pytest.param({"framerate": "-30"}, "format[0].framerate", "like 30, 29.97", id="framerate-negative"),
    pytest.param({"framerate": "ntsc"}, "format[0].framerate", "like 30, 29.97", id="framerate-name"),
    pytest.param({"framerate_limit": "1e3"}, "format[0].framerate_limit", "like 30", id="framerate-limit-exp"),
    pytest.param({"keyframe": "0"}, "format[0].keyframe", "between 1 and 10000", id="keyframe-zero"),
    pytest.param({"keyframe": 10001}, "format[0].keyframe", "between 1 and 10000", id="keyframe-big"),
    pytest.param({"keyframe": "61s"}, "format[0].keyframe", "0.1s and 60s", id="keyframe-seconds-big"),
    pytest.param({"keyframe": "0.05s"}, "format[0].keyframe", "0.1s and 60s", id="keyframe-seconds-small"),
    pytest.param({"keyframe": "3m"}, "format[0].keyframe", '"3s"', id="keyframe-unit"),
    pytest.param({"deinterlace": 2}, "format[0].deinterlace", "0 or 1", id="flag-2"),
    pytest.param({"deinterlace": "yes"}, "format[0].deinterlace", "0 or 1", id="flag-yes"),
    # rate
    pytest.param({"quality": 64}, "format[0].quality", "between 0 and 63", id="quality-64"),
    pytest.param({"quality": -1}, "format[0].quality", "between 0 and 100", id="quality-negative"),
    pytest.param({"quality": 52, "video_codec": "libx264"}, "format[0].quality", "0 and 51 for libx264",
                 id="quality-x264"),
    pytest.param({"bitrate": 0}, "format[0].bitrate", "between 1 and 200000", id="bitrate-zero"),
    pytest.param({"bitrate": 200001}, "format[0].bitrate", "between 1 and 200000", id="bitrate-big"),
    pytest.param({"bitrate": "1M"}, "format[0].bitrate", "must be an integer", id="bitrate-suffix"),
    pytest.param({"min_crf": 30, "max_crf": 20}, "format[0].min_crf", "max_crf", id="crf-order"),
    pytest.param({"adjust_crf": 11}, "format[0].adjust_crf", "between -10 and 10", id="adjust-crf"),
    # codec
    pytest.param({"video_codec": "h264"}, "format[0].video_codec", "must be one of", id="codec-unknown"),
    pytest.param({"video_codec": "libx264 -i x"}, "format[0].video_codec", "must be one of", id="codec-inject"),
    pytest.param({"profile": "ultra"}, "format[0].profile", "must be one of", id="profile-unknown"),
    pytest.param({"profile": "main10", "video_codec": "libx264"}, "format[0].profile", "for libx264",
                 id="profile-codec"),
    pytest.param({"pix_format": "rgb24"}, "format[0].pix_format", "yuv420p", id="pix-format"),
    pytest.param({"tag_video": "hvc1;"}, "format[0].tag_video", "four-character", id="tag-video"),
    pytest.param({"video_codec": "libvpx"}, "format[0].video_codec", "cannot go into a mp4", id="vp8-in-mp4"),
    pytest.param({"audio_codec": "libvorbis"}, "format[0].audio_codec", "cannot go into a mp4", id="vorbis-in-mp4"),
    pytest.param({"audio_codec": "mp3"}, "format[0].audio_codec", "aac, libfdk_aac", id="audio-codec-unknown"),
    # audio
    pytest.param({"audio_bitrate": 7}, "format[0].audio_bitrate", "between 8 and 1024", id="audio-bitrate-low"),
    pytest.param({"audio_bitrate": 2000}, "format[0].audio_bitrate", "between 8 and 1024", id="audio-bitrate-high"),
    pytest.param({"audio_sample_rate": 44000}, "format[0].audio_sample_rate", "44100", id="sample-rate-odd"),
    pytest.param({"audio_sample_rate": 1000000}, "format[0].audio_sample_rate", "between 8000 and 192000",
                 id="sample-rate-big"),
    pytest.param({"audio_channels_number": 0}, "format[0].audio_channels_number", "between 1 and 8", id="channels-0"),
    pytest.param({"audio_channels_number": 9}, "format[0].audio_channels_number", "between 1 and 8", id="channels-9"),
    pytest.param({"audio_pan": {"c0": "c2;"}}, "format[0].audio_pan", "c0..c63", id="pan-value"),
    pytest.param({"audio_pan": {"FL": "c0"}}, "format[0].audio_pan", "c0..c7", id="pan-key"),
    pytest.param({"audio_pan": "c0=c1"}, "format[0].audio_pan", "must be an object", id="pan-string"),
    # time
    pytest.param({"start_time": -1}, "format[0].start_time", "at least 0", id="start-negative"),
    pytest.param({"start_time": 2e6}, "format[0].start_time", "at most 1e+06", id="start-huge"),
    pytest.param({"duration": 0}, "format[0].duration", "greater than 0", id="duration-zero"),
    pytest.param({"duration": "-5"}, "format[0].duration", "greater than 0", id="duration-negative"),
    pytest.param({"duration": "1e3"}, "format[0].duration", "must be a number", id="duration-exponent-string"),
    # general
    pytest.param({"output": "mkv"}, "format[0].output", "must be one of", id="output-unknown"),
    pytest.param({"output": "MP4"}, "format[0].output", "must be one of", id="output-case"),
    pytest.param({"bogus": 1}, "format[0].bogus", "unknown field", id="unknown-field"),
    pytest.param({"tag": "x" * 257}, "format[0].tag", "at most 256", id="tag-long"),
    pytest.param({"tag": "a\nb"}, "format[0].tag", "control characters", id="tag-newline"),
    pytest.param({"tag": "a\u202eb"}, "format[0].tag", "control characters", id="tag-bidi"),
    pytest.param({"tag": 5}, "format[0].tag", "must be a string", id="tag-number"),
    pytest.param({"allow_soft_fail": 3}, "format[0].allow_soft_fail", "0 or 1", id="soft-fail"),
    pytest.param({"metadata_version": "4.1.5; ls"}, "format[0].metadata_version", "version", id="metadata-version"),
    # nested objects
    pytest.param({"destination": {"url": "file:///etc/passwd"}}, "format[0].destination[0].url", "scheme file:",
                 id="destination-file"),
    pytest.param({"destination": {"url": "https://example.com/x"}}, "format[0].destination[0].url",
                 "s3://, b2://", id="destination-https"),
    pytest.param({"destination": {"url": "s3://h/b/k", "permissions": "everyone"}},
                 "format[0].destination[0].permissions", "public-read", id="destination-acl"),
    pytest.param({"destination": {"url": "s3://h/b/k", "region": "x"}}, "format[0].destination[0].region",
                 "unknown field", id="destination-unknown"),
    pytest.param({"destination": {"key": "k"}}, "format[0].destination[0].url", "is required", id="destination-no-url"),
    pytest.param({"destination": []}, "format[0].destination", "must not be empty", id="destination-empty"),
    pytest.param({"destination": "s3://h/b/k"}, "format[0].destination", "must be a list", id="destination-string"),
    pytest.param({"destination": {"url": "s3://h/b/k", "cache_control": "-i x"}},
                 "format[0].destination[0].cache_control", "cache directives", id="cache-control-option"),
    pytest.param({"video_codec_parameters": {"flags2": "+bpyramid+evil"}}, "format[0].video_codec_parameters.flags2",
                 "'evil' is not allowed", id="flags2-name"),
    pytest.param({"video_codec_parameters": {"flags2": "bpyramid"}}, "format[0].video_codec_parameters.flags2",
                 "+name/-name", id="flags2-no-sign"),
    pytest.param({"video_codec_parameters": {"partitions": "+partp8x8 -i /etc/passwd"}},
                 "format[0].video_codec_parameters.partitions", "+name/-name", id="partitions-inject"),
    pytest.param({"video_codec_parameters": {"flags": "+loop+unsafe"}}, "format[0].video_codec_parameters.flags",
                 "'unsafe' is not allowed", id="flags-name"),
    pytest.param({"video_codec_parameters": {"coder": 2}}, "format[0].video_codec_parameters.coder",
                 "between 0 and 1", id="coder"),
    pytest.param({"video_codec_parameters": {"directpred": 4}}, "format[0].video_codec_parameters.directpred",
                 "between 0 and 3", id="directpred"),
    pytest.param({"video_codec_parameters": {"me_method": "fast"}}, "format[0].video_codec_parameters.me_method",
                 "epzs", id="me-method"),
    pytest.param({"video_codec_parameters": {"refs": 17}}, "format[0].video_codec_parameters.refs",
                 "between 0 and 16", id="refs"),
    pytest.param({"video_codec_parameters": {"subq": 12}}, "format[0].video_codec_parameters.subq",
                 "between 0 and 11", id="subq"),
    pytest.param({"video_codec_parameters": {"qcomp": 1.5}}, "format[0].video_codec_parameters.qcomp",
                 "at most 1", id="qcomp"),
    pytest.param({"video_codec_parameters": {"qmin": 40, "qmax": 30}}, "format[0].video_codec_parameters.qmin",
                 "qmax", id="qmin-qmax"),
    pytest.param({"video_codec_parameters": {"bufsize": 0}}, "format[0].video_codec_parameters.bufsize",
                 "greater than 0", id="bufsize-zero"),
    pytest.param({"video_codec_parameters": {"max_rate": -1}}, "format[0].video_codec_parameters.max_rate",
                 "greater than 0", id="max-rate-negative"),
    pytest.param({"video_codec_parameters": {"sws_flags": "bicubic+accurate_rnd"}},
                 "format[0].video_codec_parameters.sws_flags", "lanczos", id="sws-flags"),
    pytest.param({"video_codec_parameters": {"preset": "insane"}}, "format[0].video_codec_parameters.preset",
                 "veryslow", id="preset"),
    pytest.param({"video_codec_parameters": {"level": 43}}, "format[0].video_codec_parameters.level",
                 "30, 31, 40, 41, 42", id="level"),
    pytest.param({"video_codec_parameters": {"cmp": "sad;"}}, "format[0].video_codec_parameters.cmp", "satd",
                 id="cmp"),
    pytest.param({"video_codec_parameters": {"x264opts": "ref=3"}}, "format[0].video_codec_parameters.x264opts",
                 "unknown field", id="codec-params-unknown"),
    pytest.param({"logo": {"source": "https://h/l.png", "opacity": 2}}, "format[0].logo[0].opacity", "at most 1",
                 id="logo-opacity"),
    pytest.param({"logo": {"source": "file:/l.png"}}, "format[0].logo[0].source", "scheme file:", id="logo-file"),
    pytest.param({"subtitles": {"sources": [{"source": "https://h/s.srt", "language": "english!"}]}},
                 "format[0].subtitles.sources[0].language", "language code", id="subtitle-language"),
    pytest.param({"encryption": {"key": "abc"}}, "format[0].encryption.key", "32 hex digits", id="aes-key"),
    pytest.param({"cenc_drm": {"iv": "zz" * 16}}, "format[0].cenc_drm.iv", "hex digits", id="cenc-iv"),
    pytest.param({"cenc_drm": {"pssh": "not base64!"}}, "format[0].cenc_drm.pssh", "base64", id="cenc-pssh"),
    pytest.param({"fps_drm": {"key_url": "data:text/plain,x"}}, "format[0].fps_drm.key_url", "scheme data:",
                 id="fps-key-url"),
    pytest.param({"stream": [{"size": "1x1"}]}, "format[0].stream[0].size", "between 16 and 8192", id="stream-size"),
    pytest.param({"stream": [{"output": "mp4"}]}, "format[0].stream[0].output", "unknown field", id="stream-output"),
    pytest.param({"stream": [{"chunklist_name": "../x.m3u8"}]}, "format[0].stream[0].chunklist_name",
                 "plain file name", id="chunklist-path"),
    pytest.param({"stream": [{"quality": 64}]}, "format[0].stream[0].quality", "0 and 63", id="stream-quality"),
    pytest.param({"stream": [{}] * 21}, "format[0].stream", "at most 20", id="too-many-streams"),
    pytest.param({"playlist_name": "-master.m3u8"}, "format[0].playlist_name", "plain file name", id="playlist-dash"),
    pytest.param({"playlist_name": "a/b.m3u8"}, "format[0].playlist_name", "plain file name", id="playlist-slash"),
    pytest.param({"image_format": "gif"}, "format[0].image_format", "png, jpg", id="image-format"),
    pytest.param({"time": 1.5}, "format[0].time", "at most 1", id="thumbnail-time"),
    pytest.param({"mode": "fastest"}, "format[0].mode", "balanced", id="stt-mode"),
    pytest.param({"language": "eng"}, "format[0].language", "ISO 639-1", id="stt-language"),
    pytest.param({"translate_languages": ["es", None]}, "format[0].translate_languages[1]", "must be a string",
                 id="translate-null"),
    pytest.param({"inject_360_metadata": {"stereo": "3d"}}, "format[0].inject_360_metadata.stereo", "mono",
                 id="360-stereo"),
    # Unicode digits and exponents must not slip through as "numbers" into FFmpeg values
    pytest.param({"framerate": "\u0663\u0660"}, "format[0].framerate", "like 30", id="framerate-arabic-digits"),
    pytest.param({"size": "\uff11\uff12\uff18\uff10x720"}, "format[0].size", "WIDTHxHEIGHT", id="size-fullwidth"),
    pytest.param({"bitrate": "\u0661\u0660\u0660\u0660"}, "format[0].bitrate", "must be an integer",
                 id="bitrate-arabic-digits"),
    pytest.param({"keyframe": "\u0666\u0660"}, "format[0].keyframe", "frame count", id="keyframe-arabic-digits"),
    pytest.param({"aspect_ratio": "1e1"}, "format[0].aspect_ratio", '"16:9"', id="aspect-exponent"),
    pytest.param({"framerate": 1e-7}, "format[0].framerate", "like 30", id="framerate-tiny-float"),
]


@pytest.mark.parametrize(("fields", "field", "fragment"), BAD_FORMAT)
def test_bad_format_fields_are_refused_naming_the_field(fields: dict[str, Any], field: str, fragment: str) -> None:
    err = refused(one(**fields))
    assert type(err) is QueryError
    assert err.field == field
    assert err.message.startswith(f"{field}: ")
    assert fragment in err.message


def test_size_message_is_exactly_readable() -> None:
    assert refused(one(size="big")).message == "format[0].size: must look like WIDTHxHEIGHT, e.g. 1280x720"


BAD_QUERY = [
    pytest.param({"format": [{"output": "mp4"}]}, "source", "is required", id="no-source"),
    pytest.param({"source": SRC, "stitch": [SRC], "format": [{"output": "mp4"}]}, "stitch", "together with source",
                 id="source-and-stitch"),
    pytest.param({"source": SRC}, "format", "is required", id="no-format"),
    pytest.param({"source": SRC, "format": []}, "format", "must not be empty", id="empty-format"),
    pytest.param({"source": SRC, "format": {"output": "mp4"}}, "format", "must be a list", id="format-object"),
    pytest.param({"source": SRC, "format": [{"output": "mp4"}] * 51}, "format", "at most 50", id="format-51"),
    pytest.param({"source": SRC, "format": [None]}, "format[0]", "must be an object", id="format-null-item"),
    pytest.param({"source": SRC, "format": [{}]}, "format[0].output", "is required", id="format-no-output"),
    pytest.param({"source": SRC, "format": [{"output": "mp4"}, {"output": "webm", "size": "x"}]}, "format[1].size",
                 "WIDTHxHEIGHT", id="second-format"),
    pytest.param({"source": SRC, "format": [{"output": "mp4"}], "priority": 1}, "priority", "unknown field",
                 id="unknown-query-field"),
    pytest.param({"source": SRC, "format": [{"output": "mp4"}], "encoder_version": 3}, "encoder_version",
                 "between 1 and 2", id="encoder-version"),
    pytest.param({"source": SRC, "format": [{"output": "mp4"}], "upscale": 2}, "upscale", "0 or 1", id="upscale"),
    pytest.param({"source": SRC, "format": [{"output": "mp4"}], "callback_url": "ftp://h/cb"}, "callback_url",
                 "http://, https://", id="callback-ftp"),
    pytest.param({"source": SRC, "format": [{"output": "mp4"}], "callback_url": "http:///cb"}, "callback_url",
                 "host is missing", id="callback-no-host"),
    pytest.param({"source": SRC, "format": [{"output": "mp4"}], "callback_url": "https://h/" + "a" * 4000},
                 "callback_url", "at most 4000", id="callback-long"),
    pytest.param({"source": SRC, "format": [{"output": "mp4"}], "callback_url": "tus:abc"}, "callback_url",
                 "scheme tus:", id="callback-tus"),
    pytest.param({"stitch": [], "format": [{"output": "mp4"}]}, "stitch", "must not be empty", id="stitch-empty"),
    pytest.param({"stitch": ["file:///etc/passwd"], "format": [{"output": "mp4"}]}, "stitch[0].url", "scheme file:",
                 id="stitch-file"),
    pytest.param({"stitch": [{"url": SRC, "duration": 0}], "format": [{"output": "mp4"}]}, "stitch[0].duration",
                 "greater than 0", id="stitch-duration"),
]


@pytest.mark.parametrize(("query", "field", "fragment"), BAD_QUERY)
def test_bad_query_fields_are_refused_naming_the_field(query: dict[str, Any], field: str, fragment: str) -> None:
    err = refused(wrap(query))
    assert type(err) is QueryError
    assert (err.field, err.message.startswith(f"{field}: ")) == (field, True)
    assert fragment in err.message


BAD_SOURCES = [
    pytest.param("-i /etc/passwd", "option-like", id="option"),
    pytest.param("-f lavfi", "option-like", id="option-lavfi"),
    pytest.param("file:///etc/passwd", "scheme file:", id="file-url"),
    pytest.param("file:/etc/passwd", "scheme file:", id="file-short"),
    pytest.param("/etc/passwd", "without a scheme", id="bare-path"),
    pytest.param("pipe:0", "scheme pipe:", id="pipe"),
    pytest.param("concat:a.mp4|b.mp4", "scheme concat:", id="concat"),
    pytest.param("data:video/mp4;base64,AAAA", "scheme data:", id="data"),
    pytest.param("subfile,,start,0,end,0,,:/etc/passwd", "without a scheme", id="subfile"),
    pytest.param("gopher://h/v.mp4", "scheme gopher:", id="gopher"),
    pytest.param("rtmp://h/live", "scheme rtmp:", id="rtmp"),
    pytest.param("https://h/v.mp4 -i /etc/passwd", "without whitespace", id="space-option"),
    pytest.param("https://h/v.mp4\n-i", "without whitespace", id="newline"),
    pytest.param("https://h/v.mp4\t", "without whitespace", id="tab"),
    pytest.param("https://h/v.mp4\x00", "control characters", id="nul"),
    pytest.param("https://h/v\u00e9.mp4", "printable ASCII", id="non-ascii"),
    pytest.param("https://h\\@evil/v.mp4", "backslashes", id="backslash"),
    pytest.param("https:/h/v.mp4", "host is missing", id="no-slashes"),
    pytest.param("https://", "host is missing", id="no-host"),
    pytest.param("https://h:99999/v.mp4", "not a valid URL", id="bad-port"),
    pytest.param("tus:", "tus:<file_uuid>", id="tus-empty"),
    pytest.param("tus:../../etc/passwd", "tus:<file_uuid>", id="tus-path"),
    pytest.param("tus:$(id)", "tus:<file_uuid>", id="tus-subshell"),
    pytest.param("s3:bucket/key", "host is missing", id="s3-no-host"),
    pytest.param("", "must not be empty", id="empty"),
    pytest.param("https://h/" + "a" * 4000, "at most 4000", id="too-long"),
    pytest.param(5, "must be a string", id="number"),
    pytest.param(["https://h/v.mp4"], "must be a string", id="list"),
]


@pytest.mark.parametrize(("source", "fragment"), BAD_SOURCES)
def test_hostile_sources_are_refused(source: Any, fragment: str) -> None:
    err = refused(wrap({"source": source, "format": [{"output": "mp4"}]}))
    assert err.field == "source" and err.message.startswith("source: ")
    assert fragment in err.message


@pytest.mark.parametrize("source", [
    pytest.param("https://cdn.example.com/a/b.mp4?sig=x%20y&e=1#t", id="https-query"),
    pytest.param("http://10.0.0.1:8080/v.mp4", id="http-port"),
    pytest.param("HTTPS://CDN.EXAMPLE.COM/V.MP4", id="upper-case-scheme"),
    pytest.param("s3://us-west.s3.qencode.com/bucket/v.mp4", id="s3"),
    pytest.param("s3://AKIAKEY:se%2Fcret@s3.us-west-2.amazonaws.com/bucket/v.mp4", id="s3-credentials"),
    pytest.param("ftp://user:pass@ftp.example.com/in/v.mp4", id="ftp"),
    pytest.param("ftps://ftp.example.com:2121/v.mp4", id="ftps"),
    pytest.param("sftp://user:pass@sftp.example.com/v.mp4", id="sftp"),
    pytest.param("tus:2a7c0c5e1b6f4b7a9f0f1e2d3c4b5a69", id="tus"),
])
def test_good_sources_are_kept_verbatim(source: str) -> None:
    assert parse_query(wrap({"source": source, "format": [{"output": "mp4"}]})).source == source


# Option-injection strings against every string-typed field: each must be refused (or, for free text
# that never reaches FFmpeg, kept verbatim: confined).
INJECTIONS = ["-i /etc/passwd", ";rm -rf /", "$(id)", "`id`", "a\nb", "-y", "x|y", "../../etc/passwd"]
F = "format[0]."
STRING_FIELDS: list[tuple[str, Any]] = [
    (F + name, (lambda n: lambda v: {n: v})(name))
    for name in ("output", "size", "aspect_ratio", "resize_mode", "framerate", "framerate_limit", "keyframe",
                 "color_space", "color_range", "color_trc", "color_primaries", "video_codec", "profile",
                 "pix_format", "tag_video", "audio_codec", "playlist_name", "incremental_tag", "metadata_version",
                 "transcript_name", "json_name", "srt_name", "vtt_name", "mode", "language", "image_format",
                 "vmaf_model", "distorted")
] + [
    (F + "audio_pan", lambda v: {"audio_pan": {"c0": v}}),
    (F + "translate_languages[0]", lambda v: {"translate_languages": [v]}),
    (F + "destination[0].url", lambda v: {"destination": {"url": v}}),
    (F + "destination[0].permissions", lambda v: {"destination": {"url": "s3://h/b/k", "permissions": v}}),
    (F + "destination[0].storage_class", lambda v: {"destination": {"url": "s3://h/b/k", "storage_class": v}}),
    (F + "destination[0].cache_control", lambda v: {"destination": {"url": "s3://h/b/k", "cache_control": v}}),
    (F + "logo[0].source", lambda v: {"logo": {"source": v}}),
    (F + "subtitles.sources[0].source", lambda v: {"subtitles": {"sources": [{"source": v}]}}),
    (F + "subtitles.sources[0].language",
     lambda v: {"subtitles": {"sources": [{"source": "https://h/s.srt", "language": v}]}}),
    (F + "encryption.key", lambda v: {"encryption": {"key": v}}),
    (F + "encryption.key_url", lambda v: {"encryption": {"key_url": v}}),
    (F + "cenc_drm.key_id", lambda v: {"cenc_drm": {"key_id": v}}),
    (F + "cenc_drm.pssh", lambda v: {"cenc_drm": {"pssh": v}}),
    (F + "cenc_drm.la_url", lambda v: {"cenc_drm": {"la_url": v}}),
    (F + "fps_drm.key_url", lambda v: {"fps_drm": {"key_url": v}}),
    (F + "inject_360_metadata.side_data_type", lambda v: {"inject_360_metadata": {"side_data_type": v}}),
    (F + "inject_360_metadata.projection", lambda v: {"inject_360_metadata": {"projection": v}}),
    (F + "stream[0].chunklist_name", lambda v: {"stream": [{"chunklist_name": v}]}),
    (F + "stream[0].size", lambda v: {"stream": [{"size": v}]}),
    (F + "stream[0].video_codec", lambda v: {"stream": [{"video_codec": v}]}),
] + [
    (F + f"video_codec_parameters.{name}", (lambda n: lambda v: {"video_codec_parameters": {n: v}})(name))
    for name in ("vprofile", "level", "flags2", "partitions", "me_method", "cmp", "sws_flags", "preset", "flags",
                 "lcevc_tune", "scaling_mode_level0", "dc_dithering_type", "m_ad_mode")
]


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize(("field", "build"), [pytest.param(f, b, id=f.removeprefix(F)) for f, b in STRING_FIELDS])
def test_injection_strings_are_refused_in_every_constrained_string_field(field: str, build: Any, payload: str) -> None:
    err = refused(one(**build(payload)))
    assert type(err) is QueryError
    assert err.field == field


def test_query_level_urls_refuse_injection() -> None:
    for payload in INJECTIONS:
        assert refused(wrap({"source": SRC, "callback_url": payload, "format": [{"output": "mp4"}]})).field == \
            "callback_url"
        assert refused(wrap({"stitch": [payload], "format": [{"output": "mp4"}]})).field == "stitch[0].url"
        assert refused(wrap({"source": payload, "format": [{"output": "mp4"}]})).field == "source"


@pytest.mark.parametrize("payload", [p for p in INJECTIONS if "\n" not in p])
@pytest.mark.parametrize("fields", [
    pytest.param(lambda v: {"tag": v}, id="tag"),
    pytest.param(lambda v: {"stream": [{"tag": v}]}, id="stream-tag"),
    pytest.param(lambda v: {"destination": {"url": "s3://h/b/k", "key": v, "secret": v}}, id="credentials"),
])
def test_free_text_is_confined_verbatim(fields: Any, payload: str) -> None:
    """Labels and credentials never reach FFmpeg: they are kept as given (no control characters)."""
    dumped = parse_query(one(**fields(payload))).format[0].model_dump(exclude_none=True)
    assert payload in json.dumps(dumped)


@pytest.mark.parametrize("fields", [
    pytest.param({"tag": "a\nb"}, id="tag"),
    pytest.param({"stream": [{"tag": "a\rb"}]}, id="stream-tag"),
    pytest.param({"destination": {"url": "s3://h/b/k", "secret": "a\x1bb"}}, id="secret"),
])
def test_free_text_refuses_control_characters(fields: dict[str, Any]) -> None:
    assert "control characters" in refused(one(**fields)).message


# --------------------------------------------------------------------------------------------------
# The parser guard: wrapper, JSON hygiene, size and depth
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    pytest.param(None, id="none"),
    pytest.param("", id="empty"),
    pytest.param("   \n", id="blank"),
    pytest.param(b"", id="empty-bytes"),
    pytest.param("[]", id="list"),
    pytest.param('"query"', id="string"),
    pytest.param("42", id="number"),
    pytest.param("null", id="null"),
    pytest.param("{}", id="empty-object"),
    pytest.param('{"source": "https://h/v.mp4", "format": [{"output": "mp4"}]}', id="unwrapped"),
    pytest.param('{"query": null}', id="query-null"),
    pytest.param('{"query": {}}', id="query-empty"),
    pytest.param('{"query": "{\\"source\\": 1}"}', id="query-string"),
    pytest.param('{"query": []}', id="query-list"),
])
def test_missing_wrapper_is_query_missing(raw: str | bytes | None) -> None:
    err = refused(raw)
    assert type(err) is QueryMissing
    assert (err.message, err.field) == ("query field is required", "query")


@pytest.mark.parametrize(("raw", "fragment"), [
    pytest.param('{"query": {"source": ', "invalid JSON", id="truncated"),
    pytest.param("{'query': {}}", "invalid JSON", id="single-quotes"),
    pytest.param(one().replace('"mp4"', '"mp4",'), "invalid JSON", id="trailing-comma"),
    pytest.param(one().replace("}]}}", ', "framerate": NaN}]}}'), "NaN is not allowed", id="nan"),
    pytest.param(one().replace("}]}}", ', "bitrate": Infinity}]}}'), "Infinity is not allowed", id="infinity"),
    pytest.param(one().replace("}]}}", ', "start_time": -Infinity}]}}'), "-Infinity is not allowed",
                 id="minus-infinity"),
    pytest.param(one().replace("}]}}", ', "duration": 1e999}]}}'), "out of range", id="float-overflow"),
    pytest.param(one().replace("}]}}", ', "bitrate": ' + "9" * 5000 + "}]}}"), "invalid JSON", id="huge-int"),
    pytest.param('{"query": {"source": "a", "source": "b", "format": []}}', "duplicate key", id="duplicate-key"),
    pytest.param('{"query": {"source": "' + SRC + '", "format": [{"output": "mp4"}]}, "extra": 1}', "unknown field",
                 id="extra-wrapper-key"),
    pytest.param(b'{"query": {"source": "\xff"}}', "UTF-8", id="bad-utf8"),
    pytest.param('{"query": ' + "[" * 33 + "]" * 33 + "}", "deeper than 32", id="deep-lists"),
    pytest.param('{"a": ' * 40 + "1" + "}" * 40, "deeper than 32", id="deep-objects"),
    pytest.param("[" * 100000, "deeper than 32", id="very-deep-unclosed"),
    pytest.param(one(tag="x" * 200).replace("x" * 200, "x" * (1024 * 1024)), "at most 1048576 bytes",
                 id="oversized-str"),
    pytest.param(("{" + " " * (1024 * 1024) + "}").encode(), "at most 1048576 bytes", id="oversized-bytes"),
])
def test_hostile_json_is_refused(raw: str | bytes, fragment: str) -> None:
    err = refused(raw)
    assert type(err) is QueryError
    assert fragment in err.message


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    q = parse_query(one(tag="[" * 200 + "{" * 50))
    assert q.format[0].tag == "[" * 200 + "{" * 50


def test_nesting_at_the_limit_parses_as_json() -> None:
    # 32 levels of JSON nesting are allowed by the guard (the schema then refuses the shape).
    err = refused('{"query": ' + "[" * 31 + "]" * 31 + "}")
    assert type(err) is QueryMissing


def test_oversized_multibyte_input_is_measured_in_bytes() -> None:
    raw = '{"query": {"source": "%s", "format": [{"output": "mp4", "tag": "%s"}]}}' % (SRC, "é" * (600 * 1024))
    assert len(raw) < 1024 * 1024 < len(raw.encode())
    assert "bytes" in refused(raw).message


# --------------------------------------------------------------------------------------------------
# Model hygiene
# --------------------------------------------------------------------------------------------------

ALL_MODELS = [Query, Format, Stream, Destination, VideoCodecParameters, Logo, Subtitles, SubtitleSource,
              Encryption, CencDrm, FpsDrm, Inject360, StitchItem]


@pytest.mark.parametrize("model", [pytest.param(m, id=m.__name__) for m in ALL_MODELS])
def test_every_model_forbids_unknown_fields(model: type) -> None:
    assert model.model_config["extra"] == "forbid"
    with pytest.raises(ValidationError, match="sneaky"):
        model.model_validate({"sneaky": 1})


def test_models_are_frozen() -> None:
    fmt = parse_query(one(size="320x240")).format[0]
    with pytest.raises(ValidationError):
        fmt.size = "1x1"  # type: ignore[misc]


def test_unknown_field_names_are_escaped_in_paths() -> None:
    err = refused(one(**{"a\nb; -i": 1}))
    assert err.field == "format[0]['a\\nb; -i']"
    assert "\n" not in err.message


# --------------------------------------------------------------------------------------------------
# check_supported: the release policy
# --------------------------------------------------------------------------------------------------

HONOURED = [
    pytest.param(SEED_SDK, id="seed-sdk"),
    pytest.param(one(start_time=1, duration=2, tag="t", size="640x360", rotate=90, aspect_ratio="16:9",
                     resize_mode="crop", framerate="30000/1001", keyframe="2s", deinterlace=1, quality=23,
                     bitrate=1500, two_pass=1, pix_format="yuv420p", video_codec="libx264", profile="high",
                     audio_codec="libfdk_aac", audio_bitrate=128, audio_sample_rate=48000, audio_channels_number=2,
                     audio_mute=0, allow_soft_fail=1), id="every-honoured-format-field"),
    pytest.param(one(width=640, height=360, video_codec="libx265", profile="main10", pix_format="yuv420p10le"),
                 id="x265"),
    pytest.param(one(resolution=720, video_codec_parameters={
        "vprofile": "main", "level": 31, "coder": 1, "flags2": "+bpyramid", "partitions": "+parti4x4",
        "directpred": 1, "me_method": "hex", "subq": 6, "trellis": 1, "refs": 3, "cmp": 2, "me_range": 16,
        "sc_threshold": 40, "i_qfactor": 0.71, "b_strategy": 1, "qcomp": 0.6, "qmin": 10, "qmax": 51, "qdiff": 4,
        "max_rate": 2, "min_rate": 1, "bufsize": 4, "sws_flags": "bicubic", "preset": "medium", "flags": "+loop",
        "rc_lookahead": 40}), id="x264-codec-parameters"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "webm", "video_codec": "libvpx-vp9",
                                                  "audio_codec": "libopus"},
                                                 {"output": "webm", "video_codec": "libvpx",
                                                  "audio_codec": "libvorbis"}]}), id="webm"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "metadata", "metadata_version": "4.1.5"}]}),
                 id="metadata"),
    pytest.param(wrap({"source": "tus:2a7c0c5e1b6f4b7a9f0f1e2d3c4b5a69", "format": [{"output": "mp4"}]}),
                 id="tus-source"),
    pytest.param(wrap({"source": "http://h/v.mp4", "callback_url": "https://h/cb", "upscale": 1,
                       "encoder_version": 2, "use_subtask_callback": 0, "refresh_playlist": "0",
                       "retry_on_error": False, "format": [{"output": "mp4"}]}), id="query-fields"),
    # Vocabulary fields at their documented default are not a request for the feature.
    pytest.param(one(hdr_to_sdr=0, optimize_bitrate=0, adjust_crf=0, segment_duration=9, separate_audio=1,
                     audio_copy=1, video_copy=1, two_pass=0, fmp4=0, sprite=0, destination=None, stream=None),
                 id="defaults"),
    pytest.param(SEED_START_ENCODE2, id="seed-s3-destination"),
    pytest.param(wrap({"source": "sftp://u:p@h/in/v.mp4", "format": [{"output": "mp4", "destination": [
        {"url": "ftps://h/out/v.mp4", "key": "u", "secret": "p", "is_passive": 1, "use_tls": 1},
        {"url": "azblob://container/out/", "key": "account", "secret": "a2V5"}]}]}), id="destination-fan-out"),
]


@pytest.mark.parametrize("raw", HONOURED)
def test_check_supported_accepts_the_honoured_set(raw: str) -> None:
    check_supported(parse_query(raw))


UNSUPPORTED = [
    pytest.param(wrap({"stitch": [SRC, SRC], "format": [{"output": "mp4"}]}), "stitch", "stitching", id="stitch"),
    pytest.param(wrap({"source": SRC, "use_subtask_callback": 1, "format": [{"output": "mp4"}]}),
                 "use_subtask_callback", "subtask", id="subtask-callback"),
    pytest.param(wrap({"source": SRC, "refresh_playlist": "1", "format": [{"output": "mp4"}]}), "refresh_playlist",
                 "playlist refresh", id="refresh-playlist"),
    pytest.param(wrap({"source": SRC, "retry_on_error": True, "format": [{"output": "mp4"}]}), "retry_on_error",
                 "retries", id="retry-on-error"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "mp4"}, {"output": "mp4", "logo": {
        "source": "https://h/l.png"}}]}), "format[1].logo", "logo", id="logo-second-format"),
    pytest.param(one(stream=[{"size": "640x360"}]), "format[0].stream", "HLS/DASH outputs only", id="stream-on-mp4"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_hls", "stream": [
        {"resolution": 360, "video_codec": "libvpx-vp9"}]}]}), "format[0].stream[0].video_codec",
        "MPEG-TS cannot carry VP9", id="vp9-in-ts"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_hls", "stream": [
        {"resolution": 360, "video_codec": "libx265"}]}]}), "format[0].stream[0].video_codec", "fmp4: 1",
        id="hevc-in-ts"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_hls", "segment_duration": 2, "stream": [
        {"resolution": 720, "framerate": "30"}, {"resolution": 360, "framerate": "29.97"}]}]}),
        "format[0].stream[1].framerate", "cannot start at the same times", id="framerates-without-common-boundaries"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_hls", "segment_duration": 4, "stream": [
        {"resolution": 720, "framerate": "30", "keyframe": "90"}]}]}), "format[0].stream[0].keyframe",
        "does not divide", id="keyframe-not-dividing-segments"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_hls", "single_folder": 1, "stream": [
        {"resolution": 720, "chunklist_name": "a.m3u8"}, {"resolution": 360, "chunklist_name": "a.m3u8"}]}]}),
        "format[0].stream[0].chunklist_name", "its own name", id="single-folder-name-clash"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_hls", "stream": [
        {"resolution": 360, "logo": {"source": "https://h/l.png"}}]}]}), "format[0].stream[0].logo", "logo",
        id="logo-on-a-stream"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_hls", "fmp4": 1, "i_frames_only": 1,
                                                  "encryption": {"key": "00" * 16}}]}),
        "format[0].i_frames_only", "RFC 8216 4.3.2.4", id="iframes-with-aes"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_dash", "create_m3u8_playlist": 1,
                                                  "i_frames_only": 1}]}),
        "format[0].i_frames_only", "made for advanced_hls", id="iframes-on-cmaf"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_hls", "i_frames_only": 1,
                                                  "encryption": {"key": "00" * 16}}]}),
        "format[0].i_frames_only", "cannot be made with AES-128", id="ts-iframes-with-aes"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_hls", "playlist_name": "video_1"}]}),
        "format[0].playlist_name", "must end with .m3u8", id="hls-playlist-extension"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_dash", "stream": [
        {"resolution": 360, "chunklist_name": "a.m3u8"}]}]}), "format[0].stream[0].chunklist_name",
        "HLS outputs", id="chunklist-on-dash"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_dash", "encryption": {"key": "00" * 16}}]}),
        "format[0].encryption", "applies to HLS outputs", id="aes-on-dash"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_dash", "create_m3u8_playlist": 1,
                                                  "encryption": {"key": "00" * 16}}]}),
        "format[0].encryption", "shared with the MPD", id="aes-on-cmaf"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_hls", "fps_drm": {"key": "00" * 16}}]}),
        "format[0].fps_drm", "FairPlay", id="fps-drm-on-hls"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "advanced_dash", "cenc_drm": {"key": "00" * 16}}]}),
        "format[0].cenc_drm", "Widevine", id="cenc-drm-on-dash"),
    pytest.param(one(subtitles={"copy": 1}), "format[0].subtitles", "subtitles", id="subtitles"),
    pytest.param(one(encryption={"key": "00" * 16}), "format[0].encryption", "AES-128", id="encryption"),
    pytest.param(one(cenc_drm={"key": "00" * 16}), "format[0].cenc_drm", "Widevine", id="cenc-drm"),
    pytest.param(one(fps_drm={"key": "00" * 16}), "format[0].fps_drm", "FairPlay", id="fps-drm"),
    pytest.param(one(optimize_bitrate=1), "format[0].optimize_bitrate", "per-title", id="optimize-bitrate"),
    pytest.param(one(min_crf=18), "format[0].min_crf", "per-title", id="min-crf"),
    pytest.param(one(max_crf=30), "format[0].max_crf", "per-title", id="max-crf"),
    pytest.param(one(adjust_crf=-2), "format[0].adjust_crf", "per-title", id="adjust-crf"),
    pytest.param(one(hdr_to_sdr=1), "format[0].hdr_to_sdr", "HDR", id="hdr-to-sdr"),
    pytest.param(one(color_space="bt709"), "format[0].color_space", "not supported", id="color-space"),
    pytest.param(one(color_range=1), "format[0].color_range", "not supported", id="color-range-preserve"),
    pytest.param(one(color_trc="bt709"), "format[0].color_trc", "not supported", id="color-trc"),
    pytest.param(one(color_primaries="bt709"), "format[0].color_primaries", "not supported", id="color-primaries"),
    pytest.param(one(audio_pan={"c0": "c1"}), "format[0].audio_pan", "channel mapping", id="audio-pan"),
    pytest.param(one(framerate_limit="30"), "format[0].framerate_limit", "not supported", id="framerate-limit"),
    pytest.param(one(tag_video="avc1"), "format[0].tag_video", "not supported", id="tag-video"),
    pytest.param(one(segment_duration=4), "format[0].segment_duration", "HLS/DASH outputs only", id="segment-duration"),
    pytest.param(one(playlist_name="x.m3u8"), "format[0].playlist_name", "HLS/DASH outputs only", id="playlist-name"),
    pytest.param(one(i_frames_only=1), "format[0].i_frames_only", "HLS/DASH outputs only", id="i-frames-only"),
    pytest.param(one(fmp4=1), "format[0].fmp4", "HLS/DASH outputs only", id="fmp4"),
    pytest.param(one(separate_audio=0), "format[0].separate_audio", "HLS/DASH outputs only", id="separate-audio-off"),
    pytest.param(one(single_folder=1), "format[0].single_folder", "HLS/DASH outputs only", id="single-folder"),
    pytest.param(one(incremental_tag="auto"), "format[0].incremental_tag", "not supported", id="incremental-tag"),
    pytest.param(one(time=0.5), "format[0].time", "not supported", id="image-time"),
    pytest.param(one(interval=5), "format[0].interval", "not supported", id="image-interval"),
    pytest.param(one(image_format="jpg"), "format[0].image_format", "not supported", id="image-format"),
    pytest.param(one(sprite=1), "format[0].sprite", "not supported", id="sprite"),
    pytest.param(one(audio_copy=0), "format[0].audio_copy", "repack outputs only", id="repack-audio-copy"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "repack", "audio_copy": 0, "video_copy": 0}]}),
                 "format[0].video_copy", "nothing to copy", id="repack-nothing"),
    pytest.param(one(transcript=0), "format[0].transcript", "not supported", id="speech-transcript"),
    pytest.param(one(json=0), "format[0].json", "not supported", id="speech-json"),
    pytest.param(one(language="en"), "format[0].language", "not supported", id="speech-language"),
    pytest.param(one(translate_languages=["de"]), "format[0].translate_languages", "not supported",
                 id="speech-translate"),
    pytest.param(one(mode="speed"), "format[0].mode", "not supported", id="speech-mode"),
    pytest.param(one(keep_360_metadata=1), "format[0].keep_360_metadata", "360", id="keep-360"),
    pytest.param(one(inject_360_metadata={"stereo": "mono"}), "format[0].inject_360_metadata", "360",
                 id="inject-360"),
    pytest.param(one(vmaf_model="vmaf_v0.6.1"), "format[0].vmaf_model", "not supported", id="vmaf-model"),
    pytest.param(one(video_codec="lcevc_h264"), "format[0].video_codec", "no open LCEVC encoder", id="lcevc-h264"),
    pytest.param(one(video_codec="lcevc_hevc"), "format[0].video_codec", "no open LCEVC encoder", id="lcevc-hevc"),
    pytest.param(one(video_codec="libsvtav1"), "format[0].video_codec", "AV1", id="svt-av1"),
    pytest.param(one(video_codec="libaom-av1"), "format[0].video_codec", "AV1", id="aom-av1"),
    pytest.param(one(video_codec_parameters={"film_grain": 8}), "format[0].video_codec_parameters.film_grain",
                 "AV1", id="av1-parameter"),
    pytest.param(one(video_codec_parameters={"lcevc_tune": "vq"}), "format[0].video_codec_parameters.lcevc_tune",
                 "no open LCEVC encoder", id="lcevc-parameter"),
    pytest.param(wrap({"source": SRC, "format": [{"output": "webm", "video_codec": "libvpx-vp9",
                                                  "video_codec_parameters": {"preset": "slow"}}]}),
                 "format[0].video_codec_parameters", "libx264/libx265 only", id="x264-parameters-on-vp9"),
] + [
    pytest.param(wrap({"source": SRC, "format": [{"output": out}]}), "format[0].output",
                 f"output {out} is not supported", id=f"output-{out}")
    for out in ("gif",
                "thumbnail", "thumbnails", "speech_to_text", "vmaf")
]


@pytest.mark.parametrize(("raw", "field", "fragment"), UNSUPPORTED)
def test_check_supported_refuses_each_unsupported_field_by_name(raw: str, field: str, fragment: str) -> None:
    err = unsupported(raw)
    assert err.field == field
    assert err.message.startswith(f"{field}: ")
    assert fragment in err.message


def test_every_format_field_is_either_honoured_or_refused() -> None:
    """A field added to the model later is refused by default until the policy table honours it."""
    wire_names = {f.alias or name for name, f in Format.model_fields.items()}
    assert qmod.HONOURED_FORMAT_FIELDS <= wire_names
    assert "destination" in qmod.HONOURED_FORMAT_FIELDS
    assert qmod.SUPPORTED_OUTPUTS == {"mp4", "webm", "metadata", "advanced_hls", "hls_audio", "advanced_dash",
                                      "webm_dash", "repack", "mp3", "flac"}
    assert qmod.AUDIO_CODEC_FALLBACKS == {"libfdk_aac": "aac"}
    params = set(VideoCodecParameters.model_fields)
    assert qmod.HONOURED_CODEC_PARAMETERS | set(qmod.CODEC_PARAMETER_REASONS) == params


def test_policy_flip_is_one_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    q = parse_query(one(framerate_limit="30"))
    with pytest.raises(UnsupportedField):
        check_supported(q)
    monkeypatch.setattr(qmod, "HONOURED_FORMAT_FIELDS", qmod.HONOURED_FORMAT_FIELDS | {"framerate_limit"})
    check_supported(q)


def test_depth_guard_is_linear_on_pathological_strings() -> None:
    """Escaped quotes inside an unterminated string once made the pre-scan quadratic (minutes per request)."""
    import time

    started = time.monotonic()
    for raw in ('"' + '\\"' * 400_000, '"' * 1_000_000, '"' + "\\" * 500_001, '["' * 300_000):
        with pytest.raises(QueryError):
            parse_query(raw)
    assert time.monotonic() - started < 3


def test_models_can_be_built_directly_by_the_engine_and_tests() -> None:
    fmt = Format(output="mp4", size="1280x720", keyframe="2s", framerate=25, aspect_ratio="4:3", quality="20")
    assert (fmt.size_wh, fmt.keyframe_spec, fmt.framerate_value) == ((1280, 720), (2.0, "seconds"), "25")
    assert fmt.aspect_ratio_value == pytest.approx(4 / 3) and fmt.quality == 20
    stream = Stream(size="640x360", keyframe=48)
    assert (stream.size_wh, stream.keyframe_spec) == ((640, 360), (48, "frames"))
    with pytest.raises(ValidationError):
        Format(output="mp4", size="-vf x")

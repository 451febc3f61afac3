"""The support policy: what this release honours. Flip entries here as features land.

    check_supported(q) refuses, by dotted field path, what this release does not honour yet
"""

from typing import Any

from pydantic import BaseModel

from vidmill.core.query.leaves import VideoCodecParameters
from vidmill.core.query.models import Format, Query
from vidmill.core.query.values import _choices
from vidmill.core.query.vocabulary import AV1_CODECS, LCEVC_CODECS, VPX_CODECS
from vidmill.errors import UnsupportedField

SUPPORTED_OUTPUTS = frozenset({"mp4", "webm", "metadata", "advanced_hls", "hls_audio", "advanced_dash", "webm_dash",
                               "repack", "mp3", "flac"})
SUPPORTED_SOURCE_SCHEMES = frozenset({"http", "https", "s3", "ftp", "ftps", "sftp", "tus"})  # tus: a finished upload of the same project
SUPPORTED_VIDEO_CODECS = frozenset({"libx264", "libx265", "libvpx", "libvpx-vp9"})
SUPPORTED_AUDIO_CODECS = frozenset({"aac", "libfdk_aac", "libvorbis", "libopus"})
# Accepted but encoded with another encoder (the engine adds a task warning).
AUDIO_CODEC_FALLBACKS = {"libfdk_aac": "aac"}

UNSUPPORTED_SOURCE_REASONS = {
}
UNSUPPORTED_VIDEO_CODEC_REASONS = {
    **{c: f"{c} is not supported: there is no open LCEVC encoder" for c in sorted(LCEVC_CODECS)},
    **{c: f"{c} (AV1) is not supported yet by vidmill" for c in sorted(AV1_CODECS)},
}

# Query fields refused when set to anything but their default: field -> (default, reason).
UNSUPPORTED_QUERY_FIELDS: dict[str, tuple[Any, str]] = {
    "stitch": (None, "stitching several inputs is not supported yet by vidmill"),
    "use_subtask_callback": (False, "per-output (subtask) callbacks are not supported yet by vidmill"),
    "refresh_playlist": (False, "playlist refresh is not supported yet by vidmill"),
    "retry_on_error": (False, "automatic retries are not supported yet by vidmill"),
}

# Format fields this release honours; every other Format field set to a non-default value is refused.
HONOURED_FORMAT_FIELDS = frozenset({
    "output", "start_time", "duration", "tag", "size", "width", "height", "resolution", "rotate",
    "aspect_ratio", "resize_mode", "framerate", "keyframe", "deinterlace", "quality", "bitrate", "two_pass",
    "pix_format", "video_codec", "profile", "video_codec_parameters", "audio_codec", "audio_bitrate",
    "audio_sample_rate", "audio_channels_number", "audio_mute", "metadata_version", "allow_soft_fail",
    "destination",
    # streaming outputs (refused on file outputs by _check_streaming_fields)
    "stream", "playlist_name", "segment_duration", "i_frames_only", "fmp4", "create_m3u8_playlist",
    "separate_audio", "single_folder",
    "encryption",  # AES-128 HLS (refused on other outputs by engine.streaming.check_static / _check_format)
    # repack (refused on other outputs by _check_format)
    "audio_copy", "video_copy", "subtitles_copy", "metadata_copy",
})
STREAMING_OUTPUTS = frozenset({"advanced_hls", "hls_audio", "advanced_dash", "webm_dash"})
REPACK_ONLY_FIELDS = ("audio_copy", "video_copy", "subtitles_copy", "metadata_copy")
STREAMING_ONLY_FIELDS = ("stream", "playlist_name", "segment_duration", "i_frames_only", "fmp4",
                         "create_m3u8_playlist", "separate_audio", "single_folder")
# Defaults of fields whose default is not "absent/0" (a field equal to its default is not refused).
FORMAT_FIELD_DEFAULTS: dict[str, Any] = {
    "segment_duration": 9.0, "separate_audio": True, "audio_copy": True, "video_copy": True,
    "subtitles_copy": True, "metadata_copy": True, "transcript": True, "json": True, "srt": True,
    "vtt": True, "rotate": 0, "adjust_crf": 0, "min_crf": 0, "max_crf": 51, "transcript_name": "transcript.txt",
    "json_name": "timestamps.json", "srt_name": "subtitles.srt", "vtt_name": "subtitles.vtt", "mode": "balanced",
    "image_format": "png", "resize_mode": "scale",
}
_GROUP_REASONS = {
    "no_audio": "no_audio is not part of the Qencode API (vidmill uses it for Octet jobs)",
    **{f: f"{f} is not part of the Qencode API (vidmill uses it for Octet jobs)"
       for f in ("constant_qp", "constant_bitrate", "hardware", "hardware_preset")},
    "stream": "streams (HLS/DASH renditions) are not supported yet by vidmill",
    "logo": "logo overlays are not supported yet by vidmill",
    "subtitles": "subtitles are not supported yet by vidmill",
    "cenc_drm": "Widevine/PlayReady DRM is not supported yet by vidmill",
    "fps_drm": "FairPlay DRM is not supported yet by vidmill",
    "optimize_bitrate": "per-title encoding is not supported yet by vidmill",
    "min_crf": "per-title encoding is not supported yet by vidmill",
    "max_crf": "per-title encoding is not supported yet by vidmill",
    "adjust_crf": "per-title encoding is not supported yet by vidmill",
    "hdr_to_sdr": "HDR to SDR conversion is not supported yet by vidmill",
    "audio_pan": "audio channel mapping is not supported yet by vidmill",
    "inject_360_metadata": "360 metadata injection is not supported yet by vidmill",
    "keep_360_metadata": "360 metadata is not supported yet by vidmill",
}
_NO_OPEN_LCEVC = "LCEVC settings are not supported: there is no open LCEVC encoder"
_AV1_LATER = "AV1 encoder settings are not supported yet by vidmill"
# video_codec_parameters fields honoured (x264/x265); the rest (AV1, LCEVC) are refused with a reason.
HONOURED_CODEC_PARAMETERS = frozenset({
    "vprofile", "level", "coder", "flags2", "partitions", "directpred", "me_method", "subq", "trellis", "refs",
    "cmp", "me_range", "sc_threshold", "i_qfactor", "b_strategy", "qcomp", "qmin", "qmax", "qdiff", "max_rate",
    "min_rate", "bufsize", "sws_flags", "preset", "flags", "rc_lookahead",
})
CODEC_PARAMETER_REASONS = {
    **{f: _AV1_LATER for f in ("tune", "aq_mode", "film_grain", "fast_decode", "enable_dlf", "enable_restoration",
                               "hierarchical_levels", "pred_struct")},
    **{f: _NO_OPEN_LCEVC for f in ("lcevc_tune", "scaling_mode_level0", "dc_dithering_type", "dc_dithering_strength",
                                   "dc_dithering_qp_start", "dc_dithering_qp_saturate", "m_ad_mode", "m_hf_strength",
                                   "m_lf_strength")},
}


def _wire_name(model: type[BaseModel], attr: str) -> str:
    return model.model_fields[attr].alias or attr


def _is_default(value: Any, default: Any = None) -> bool:
    if value is None:
        return True
    if default is None:
        return value is False or (not isinstance(value, bool) and value == 0 and isinstance(value, (int, float)))
    return value == default


def check_supported(q: Query, *, allow: frozenset[str] = frozenset()) -> None:
    """Raise ``UnsupportedField`` naming the first field this release does not honour yet. ``allow`` names
    vidmill-only format fields the calling dialect sets itself (Octet's ``no_audio``)."""
    if q.source is not None:
        scheme = q.source.split(":", 1)[0].lower()
        if scheme not in SUPPORTED_SOURCE_SCHEMES:
            raise UnsupportedField(f"source: {UNSUPPORTED_SOURCE_REASONS.get(scheme, 'scheme not supported')}",
                                   field="source")
    for name, (default, reason) in UNSUPPORTED_QUERY_FIELDS.items():
        if not _is_default(getattr(q, name), default):
            raise UnsupportedField(f"{name}: {reason}", field=name)
    for index, fmt in enumerate(q.format):
        _check_format(fmt, f"format[{index}]", allow)


def _refuse(path: str, reason: str) -> None:
    raise UnsupportedField(f"{path}: {reason}", field=path)


def _check_format(fmt: Format, prefix: str, allow: frozenset[str] = frozenset()) -> None:
    if fmt.output not in SUPPORTED_OUTPUTS:
        _refuse(f"{prefix}.output", f"output {fmt.output} is not supported yet by vidmill; "
                                    f"use {_choices(tuple(sorted(SUPPORTED_OUTPUTS)))}")
    for attr in Format.model_fields:
        wire = _wire_name(Format, attr)
        if wire in HONOURED_FORMAT_FIELDS or wire in allow:
            continue
        if not _is_default(getattr(fmt, attr), FORMAT_FIELD_DEFAULTS.get(wire)):
            _refuse(f"{prefix}.{wire}", _GROUP_REASONS.get(wire, f"{wire} is not supported yet by vidmill"))
    if fmt.output != "repack":
        for name in REPACK_ONLY_FIELDS:
            if not _is_default(getattr(fmt, name), FORMAT_FIELD_DEFAULTS.get(name)):
                _refuse(f"{prefix}.{name}", f"{name} is used with repack outputs only, not {fmt.output}")
    elif fmt.audio_copy is False and fmt.video_copy is False:
        _refuse(f"{prefix}.video_copy", "with video_copy and audio_copy both 0 a repack has nothing to copy")
    if fmt.encryption is not None and fmt.output not in STREAMING_OUTPUTS:
        _refuse(f"{prefix}.encryption", f"AES-128 encryption applies to HLS outputs, not {fmt.output}")
    if fmt.output in STREAMING_OUTPUTS:
        _check_streaming(fmt, prefix)
    else:
        for name in STREAMING_ONLY_FIELDS:
            if not _is_default(getattr(fmt, name), FORMAT_FIELD_DEFAULTS.get(name)):
                _refuse(f"{prefix}.{name}", f"{name} is used with HLS/DASH outputs only, not {fmt.output}")
    if fmt.video_codec is not None and fmt.video_codec not in SUPPORTED_VIDEO_CODECS:
        _refuse(f"{prefix}.video_codec", UNSUPPORTED_VIDEO_CODEC_REASONS.get(
            fmt.video_codec, f"{fmt.video_codec} is not supported yet by vidmill"))
    if fmt.audio_codec is not None and fmt.audio_codec not in SUPPORTED_AUDIO_CODECS:
        _refuse(f"{prefix}.audio_codec", f"{fmt.audio_codec} is not supported yet by vidmill")
    params = fmt.video_codec_parameters
    if params is not None:
        for attr in VideoCodecParameters.model_fields:
            if attr not in HONOURED_CODEC_PARAMETERS and getattr(params, attr) is not None:
                _refuse(f"{prefix}.video_codec_parameters.{attr}", CODEC_PARAMETER_REASONS.get(
                    attr, f"{attr} is not supported yet by vidmill"))
        if fmt.video_codec in VPX_CODECS and any(getattr(params, a) is not None for a in HONOURED_CODEC_PARAMETERS):
            _refuse(f"{prefix}.video_codec_parameters", f"video_codec_parameters apply to libx264/libx265 only, "
                                                         f"not {fmt.video_codec}")


def _check_streaming(fmt: Format, prefix: str) -> None:
    """Each stream's fields like a format's; then what no source can make work (engine.streaming.check_static)."""
    from vidmill.core.query.rendition import Stream
    from vidmill.engine.streaming import check_static
    from vidmill.errors import QueryError

    for j, stream in enumerate(fmt.stream or []):
        sp = f"{prefix}.stream[{j}]"
        for attr in Stream.model_fields:
            wire = _wire_name(Stream, attr)
            if wire in HONOURED_FORMAT_FIELDS or wire == "chunklist_name":
                continue
            if not _is_default(getattr(stream, attr), FORMAT_FIELD_DEFAULTS.get(wire)):
                _refuse(f"{sp}.{wire}", _GROUP_REASONS.get(wire, f"{wire} is not supported yet by vidmill"))
        if stream.video_codec is not None and stream.video_codec not in SUPPORTED_VIDEO_CODECS:
            _refuse(f"{sp}.video_codec", UNSUPPORTED_VIDEO_CODEC_REASONS.get(
                stream.video_codec, f"{stream.video_codec} is not supported yet by vidmill"))
        if stream.audio_codec is not None and stream.audio_codec not in SUPPORTED_AUDIO_CODECS:
            _refuse(f"{sp}.audio_codec", f"{stream.audio_codec} is not supported yet by vidmill")
    try:
        check_static(fmt, prefix)
    except UnsupportedField:
        raise
    except QueryError as exc:  # refused at start, by field, like every other refusal of check_supported
        raise UnsupportedField(exc.message, field=exc.field) from None

"""The Qencode v1 query vocabulary as validated pydantic models: vidmill's security boundary.

Every value a client sends is checked here against an allow-list, a number range, a strict regex or a
URL shape before anything downstream sees it, so no user string can ever become an FFmpeg option.

    parse_query(raw)   the ``query`` form field of start_encode2 -> ``Query`` (or ``QueryError``)
    check_supported(q) refuses, by dotted field path, what this release does not honour yet

Wire types are loose (Qencode clients send ``"60"`` for 60 and ``"1"``/``1``/``true`` for flags); the
models accept them and store normalized values: ints, floats, bools, and canonical strings for the
string-typed wire fields (``size`` "1280x720", ``keyframe`` "60" or "3s", ``framerate`` "30000/1001").
The typed views the engine needs are read-only properties on Format and Stream: ``size_wh`` (w, h),
``keyframe_spec`` ((60, "frames") or (3.0, "seconds")), ``framerate_value`` / ``framerate_fraction``,
``aspect_ratio_value``. Fields taking one object or a list (``destination``, ``logo``) are stored as lists,
and bare stitch URLs as ``StitchItem``.

Two wire names clash with pydantic's ``BaseModel`` API and live under a trailing underscore:
``Format.json_`` (wire ``json``) and ``Subtitles.copy_`` (wire ``copy``).

Modules, one noun each: ``vocabulary`` (allowed values), ``values`` and ``media_values`` (wire value
coercers), ``fields`` (annotated field types and the base model), ``leaves`` (leaf objects), ``rendition``
(fields shared by Format and Stream), ``models`` (Format, Query), ``parse`` (parse_query and its guards),
``support`` (check_supported and its policy tables; patch policy entries there).
"""

from vidmill.core.query.fields import (
    Dimension, FileName, Flag, Hex32, HttpUrl, Language, LanguageCode, Seconds, Secret, Text, Token,
)
from vidmill.core.query.leaves import (
    CencDrm, Destination, Encryption, FpsDrm, Inject360, Logo, StitchItem, SubtitleSource, Subtitles,
    VideoCodecParameters,
)
from vidmill.core.query.models import Format, Query
from vidmill.core.query.parse import MAX_JSON_DEPTH, MAX_QUERY_BYTES, parse_query
from vidmill.core.query.rendition import Stream
from vidmill.core.query.support import (
    AUDIO_CODEC_FALLBACKS, CODEC_PARAMETER_REASONS, FORMAT_FIELD_DEFAULTS, HONOURED_CODEC_PARAMETERS,
    HONOURED_FORMAT_FIELDS, SUPPORTED_AUDIO_CODECS, SUPPORTED_OUTPUTS, SUPPORTED_SOURCE_SCHEMES,
    SUPPORTED_VIDEO_CODECS, UNSUPPORTED_QUERY_FIELDS, UNSUPPORTED_SOURCE_REASONS, UNSUPPORTED_VIDEO_CODEC_REASONS,
    check_supported,
)
from vidmill.core.query.vocabulary import (
    AUDIO_CODECS, AV1_CODECS, CMP_FUNCTIONS, COLOR_PRIMARIES, COLOR_RANGES, COLOR_SPACES, COLOR_TRCS,
    CONTAINER_AUDIO_CODECS, CONTAINER_VIDEO_CODECS, DESTINATION_SCHEMES, FLAGS, FLAGS2, H26X_CODECS,
    IMAGE_OUTPUTS, LCEVC_CODECS, LCEVC_TUNES, LEVELS, ME_METHODS, OUTPUTS, PARTITIONS, PIX_FORMATS, PRESETS,
    PROFILES, PROFILES_BY_CODEC, S3_PERMISSIONS, SAMPLE_RATES, SOURCE_SCHEMES, SWS_FLAGS, VIDEO_CODECS, VPX_CODECS,
)

__all__ = [
    "CencDrm", "Destination", "Encryption", "Format", "FpsDrm", "Inject360", "Logo", "Query",
    "Stream", "StitchItem", "SubtitleSource", "Subtitles", "VideoCodecParameters",
    "parse_query", "check_supported",
    "SUPPORTED_OUTPUTS", "SUPPORTED_SOURCE_SCHEMES", "SUPPORTED_VIDEO_CODECS", "SUPPORTED_AUDIO_CODECS",
    "AUDIO_CODEC_FALLBACKS", "UNSUPPORTED_QUERY_FIELDS", "HONOURED_FORMAT_FIELDS",
    "HONOURED_CODEC_PARAMETERS", "MAX_QUERY_BYTES", "MAX_JSON_DEPTH",
]

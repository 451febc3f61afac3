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
"""

import base64
import json
import math
import re
import unicodedata
from collections.abc import Callable
from fractions import Fraction
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from vidmill.errors import QueryError, QueryMissing, UnsupportedField

__all__ = [
    "CencDrm", "Destination", "Encryption", "Format", "FpsDrm", "Inject360", "Logo", "Query",
    "Stream", "StitchItem", "SubtitleSource", "Subtitles", "VideoCodecParameters",
    "parse_query", "check_supported",
    "SUPPORTED_OUTPUTS", "SUPPORTED_SOURCE_SCHEMES", "SUPPORTED_VIDEO_CODECS", "SUPPORTED_AUDIO_CODECS",
    "AUDIO_CODEC_FALLBACKS", "UNSUPPORTED_QUERY_FIELDS", "HONOURED_FORMAT_FIELDS",
    "HONOURED_CODEC_PARAMETERS", "MAX_QUERY_BYTES", "MAX_JSON_DEPTH",
]

MAX_QUERY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32

# --------------------------------------------------------------------------------------------------
# Vocabulary (allowed values)
# --------------------------------------------------------------------------------------------------

OUTPUTS = (
    "mp4", "webm", "advanced_hls", "advanced_dash", "webm_dash", "repack", "mp3", "hls_audio", "flac",
    "gif", "thumbnail", "thumbnails", "metadata", "speech_to_text", "vmaf",
)
IMAGE_OUTPUTS = frozenset({"thumbnail", "thumbnails", "gif"})
H26X_CODECS = frozenset({"libx264", "libx265"})
VPX_CODECS = frozenset({"libvpx", "libvpx-vp9"})
LCEVC_CODECS = frozenset({"lcevc_h264", "lcevc_hevc"})
AV1_CODECS = frozenset({"libsvtav1", "libaom-av1", "librav1e"})
VIDEO_CODECS = tuple(sorted(H26X_CODECS | VPX_CODECS | LCEVC_CODECS | AV1_CODECS))
AUDIO_CODECS = ("aac", "libfdk_aac", "libvorbis", "libopus")
# What each file container can hold (explicit codecs only; the engine picks defaults).
CONTAINER_VIDEO_CODECS = {
    "mp4": H26X_CODECS | {"libvpx-vp9"} | LCEVC_CODECS | AV1_CODECS,
    "webm": VPX_CODECS | AV1_CODECS,
}
CONTAINER_AUDIO_CODECS = {"mp4": frozenset({"aac", "libfdk_aac"}), "webm": frozenset({"libvorbis", "libopus"})}

PROFILES_BY_CODEC = {
    "libx264": ("baseline", "main", "high", "high10", "high422", "high444"),
    "libx265": ("main", "main10", "main12", "main422-10", "main444-8", "main444-10", "mainstillpicture"),
    "libvpx": ("0", "1", "2", "3"),
    "libvpx-vp9": ("0", "1", "2", "3"),
}
PROFILES = tuple(dict.fromkeys(p for ps in PROFILES_BY_CODEC.values() for p in ps))
LEVELS = (
    "1.0", "1.1", "1.2", "1.3", "2.0", "2.1", "2.2", "3.0", "3.1", "3.2",
    "4.0", "4.1", "4.2", "5.0", "5.1", "5.2", "6.0", "6.1", "6.2",
)
PIX_FORMATS = ("yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuv420p10le")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
ME_METHODS = ("dia", "hex", "umh", "esa", "tesa", "epzs", "full")
CMP_FUNCTIONS = (
    "sad", "sse", "satd", "dct", "psnr", "bit", "rd", "zero", "vsad", "vsse", "nsse", "w53", "w97",
    "dctmax", "chroma",
)
SWS_FLAGS = (
    "fast_bilinear", "bilinear", "bicubic", "experimental", "neighbor", "area", "bicublin", "gauss",
    "sinc", "lanczos", "spline",
)
FLAGS2 = ("bpyramid", "wpred", "mixed_refs", "dct8x8", "fastpskip", "aud", "mbtree", "psy", "ssim")
PARTITIONS = ("partp8x8", "partp4x4", "partb8x8", "parti8x8", "parti4x4")
FLAGS = (
    "mv4", "qpel", "loop", "qscale", "pass1", "pass2", "gray", "emu_edge", "psnr", "truncated", "ildct",
    "low_delay", "global_header", "bitexact", "aic", "cbp", "qprd", "ilme", "cgop",
)
SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000)
COLOR_SPACES = (
    "rgb", "bt709", "fcc", "bt470bg", "smpte170m", "smpte240m", "ycocg", "bt2020nc", "bt2020_ncl",
    "bt2020c", "bt2020_cl", "smpte2085",
)
COLOR_RANGES = ("tv", "mpeg", "pc", "jpeg")
COLOR_TRCS = (
    "bt709", "gamma22", "gamma28", "smpte170m", "smpte240m", "linear", "log", "log100", "log_sqrt",
    "log316", "iec61966_2_4", "bt1361", "iec61966_2_1", "bt2020_10bit", "bt2020_12bit", "smpte2084",
    "smpte428", "arib-std-b67",
)
COLOR_PRIMARIES = (
    "bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020", "smpte428", "smpte431",
    "smpte432", "jedec-p22",
)
S3_PERMISSIONS = (
    "private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
    "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write",
)
DESTINATION_SCHEMES = ("s3", "b2", "azblob", "ftp", "ftps", "sftp")
SOURCE_SCHEMES = ("http", "https", "tus", "s3")
LCEVC_TUNES = ("vq", "vmaf", "vmaf_neg", "psnr", "ssim", "animation")

# --------------------------------------------------------------------------------------------------
# Value parsers: each takes the raw wire value (never None) and returns the normalized value or
# raises ValueError with a human message (the dotted field path is added by parse_query).
# --------------------------------------------------------------------------------------------------

_INT_RE = re.compile(r"[+-]?[0-9]{1,12}")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]{1,12}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_SIZE_RE = re.compile(r"([0-9]{1,5})[xX]([0-9]{1,5})")
_RATIONAL_RE = re.compile(r"([0-9]{1,6})/([0-9]{1,6})")
_DECIMAL_RE = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")
_KEYFRAME_S_RE = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,3})?)s")
_ASPECT_RE = re.compile(r"([0-9]{1,4}(?:\.[0-9]{1,4})?):([0-9]{1,4}(?:\.[0-9]{1,4})?)")
_FILENAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_TUS_RE = re.compile(r"tus:[A-Za-z0-9_-]{1,128}")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,15}):")
_FLAG_SEQ_RE = re.compile(r"(?:[+-][a-z0-9_]{1,32})+")
_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _show(value: Any, limit: int = 40) -> str:
    """A value echoed into an error message: repr (escapes control characters), truncated."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _choices(values: tuple | frozenset) -> str:
    return ", ".join(str(v) for v in values)


def _not_bool(value: Any, what: str) -> None:
    if isinstance(value, bool):
        raise ValueError(f"must be {what}, not true/false")


def _as_int(value: Any, lo: int, hi: int) -> int:
    _not_bool(value, "an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise ValueError(f"must be an integer, got {_show(value)}")
    if not lo <= number <= hi:
        raise ValueError(f"must be between {lo} and {hi}, got {number}")
    return number


def _as_float(value: Any, lo: float, hi: float, *, above_lo: bool = False) -> float:
    _not_bool(value, "a number")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise ValueError(f"must be a number, got {_show(value)}")
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    if number < lo or number > hi or (above_lo and number == lo):
        bound = f"greater than {lo:g}" if above_lo else f"at least {lo:g}"
        raise ValueError(f"must be {bound} and at most {hi:g}, got {number:g}")
    return number


def _as_flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise ValueError(f"must be 0 or 1, got {_show(value)}")


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_show(value)}")
    return value


def _as_choice(value: Any, choices: tuple) -> str:
    text = _as_str(value)
    if text not in choices:
        raise ValueError(f"must be one of {_choices(choices)}; got {_show(text)}")
    return text


def _as_text(value: Any, max_len: int = 256) -> str:
    """Free text that never reaches FFmpeg (tags, credentials): bounded, no control characters."""
    text = _as_str(value)
    if len(text) > max_len:
        raise ValueError(f"must be at most {max_len} characters")
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI:
            raise ValueError("must not contain control characters")
    return text


def _as_token(value: Any) -> str:
    """A short identifier (model names, enum-like values the docs leave open)."""
    text = _as_str(value)
    if not _TOKEN_RE.fullmatch(text):
        raise ValueError("must be a short name of letters, digits, '.', '_' or '-'")
    return text


def _as_filename(value: Any) -> str:
    text = _as_str(value)
    if not _FILENAME_RE.fullmatch(text):
        raise ValueError("must be a plain file name (letters, digits, '.', '_', '-'; no path), e.g. playlist.m3u8")
    return text


def _as_url(value: Any, schemes: tuple, *, max_len: int = 4000) -> str:
    """A URL with one of ``schemes``: printable ASCII, no whitespace, never option-like."""
    text = _as_str(value)
    wanted = ", ".join(f"{s}://" if s != "tus" else "tus:<uuid>" for s in schemes)
    if not text:
        raise ValueError("must not be empty")
    if len(text) > max_len:
        raise ValueError(f"must be at most {max_len} characters")
    if text.startswith("-"):
        raise ValueError(f"must be a URL ({wanted}), not an option-like string starting with '-'")
    if any(not 0x21 <= ord(c) <= 0x7E for c in text) or "\\" in text:
        raise ValueError("must be a URL of printable ASCII without whitespace, control characters or backslashes "
                         "(percent-encode them)")
    match = _SCHEME_RE.match(text)
    scheme = match.group(1).lower() if match else None
    if scheme not in schemes:
        shown = f"scheme {scheme}: is" if scheme else "a URL without a scheme is"
        raise ValueError(f"{shown} not allowed; must be {wanted}")
    if scheme == "tus":
        if not _TUS_RE.fullmatch(text):
            raise ValueError("must look like tus:<file_uuid>")
        return text
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if not text[len(scheme) + 1:].startswith("//") or not parts.hostname:
        raise ValueError(f"must be {scheme}://<host>/...; the host is missing")
    return text


def _as_hex(value: Any, lengths: tuple[int, ...]) -> str:
    text = _as_str(value)
    if len(text) == 36 and re.fullmatch(r"[0-9a-fA-F-]+", text):  # a UUID-style key id
        text = text.replace("-", "")
    if text.lower().startswith("0x"):
        text = text[2:]
    if not _HEX_RE.fullmatch(text) or len(text) not in lengths:
        sizes = " or ".join(str(n) for n in lengths)
        raise ValueError(f"must be {sizes} hex digits")
    return text.lower()


def _as_base64(value: Any) -> str:
    text = _as_str(value)
    if not text or len(text) > 16384:
        raise ValueError("must be base64, at most 16384 characters")
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("must be valid base64") from None
    return text


def _as_size(value: Any) -> str:
    text = _as_str(value).strip()
    match = _SIZE_RE.fullmatch(text)
    if not match:
        raise ValueError("must look like WIDTHxHEIGHT, e.g. 1280x720")
    width, height = int(match.group(1)), int(match.group(2))
    for number in (width, height):
        if not 16 <= number <= 8192:
            raise ValueError(f"width and height must be between 16 and 8192, got {width}x{height}")
    return f"{width}x{height}"


def _number_text(value: Any) -> str:
    """A number or numeric string as canonical text ("30", "29.97")."""
    _not_bool(value, "a number")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return repr(value).removesuffix(".0")
    return _as_str(value).strip()


def _as_rate(value: Any) -> str:
    """A frame rate: "30", "29.97" or "30000/1001", above 0 and at most 240."""
    text = _number_text(value)
    if match := _RATIONAL_RE.fullmatch(text):
        num, den = int(match.group(1)), int(match.group(2))
        if den == 0:
            raise ValueError("must not divide by zero")
        rate = Fraction(num, den)
    elif _DECIMAL_RE.fullmatch(text):
        rate = Fraction(text)
    else:
        raise ValueError("must be a frame rate like 30, 29.97 or 30000/1001")
    if not 0 < rate <= 240:
        raise ValueError(f"must be above 0 and at most 240 fps, got {text}")
    return text


def _as_keyframe(value: Any) -> str:
    """Keyframe interval: frames ("60", 60) or seconds ("3s")."""
    if isinstance(value, str) and (match := _KEYFRAME_S_RE.fullmatch(value.strip())):
        seconds = float(match.group(1))
        if not 0.1 <= seconds <= 60:
            raise ValueError(f"in seconds must be between 0.1s and 60s, got {value.strip()}")
        return f"{seconds:g}s"
    try:
        return str(_as_int(value, 1, 10000))
    except ValueError as exc:
        if "between" in str(exc):
            raise ValueError(f"in frames must be between 1 and 10000; {exc}") from None
        raise ValueError('must be a frame count like 60 or seconds like "3s"') from None


def _as_aspect(value: Any) -> str:
    text = _number_text(value)
    if match := _ASPECT_RE.fullmatch(text):
        num, den = float(match.group(1)), float(match.group(2))
        if den == 0:
            raise ValueError("must not divide by zero")
        ratio = num / den
    elif _DECIMAL_RE.fullmatch(text):
        ratio = float(text)
    else:
        raise ValueError('must look like "16:9" or 1.77')
    if not 0.1 <= ratio <= 10:
        raise ValueError(f"must be between 0.1 and 10, got {text}")
    return text


def _as_level(value: Any) -> str:
    """H.264/H.265 level: 41, "41" or "4.1" -> "4.1"."""
    text = _number_text(value)
    if re.fullmatch(r"[0-9]{2}", text):
        text = f"{text[0]}.{text[1]}"
    elif re.fullmatch(r"[0-9]", text):
        text = f"{text}.0"
    if text not in LEVELS:
        raise ValueError(f"must be a level like 30, 31, 40, 41, 42 or 4.1; got {_show(value)}")
    return text


def _as_profile(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _as_choice(value, PROFILES)


def _as_flag_seq(value: Any, names: tuple) -> str:
    """FFmpeg flag sequences like "+bpyramid+wpred-fastpskip", each name from an allow-list."""
    text = _as_str(value).replace("\u00d7", "x").replace(" ", "").replace(",", "")
    if len(text) > 512 or not _FLAG_SEQ_RE.fullmatch(text):
        raise ValueError('must be a sequence of +name/-name, e.g. "+bpyramid+wpred"')
    for name in re.findall(r"[a-z0-9_]+", text):
        if name not in names:
            raise ValueError(f"{_show(name)} is not allowed; use {_choices(names)}")
    return text


def _as_color(value: Any, choices: tuple) -> str:
    """A colour value from ``choices``, or 1 ("preserve the source value")."""
    if value in (1, "1") and not isinstance(value, bool):
        return "1"
    return _as_choice(value, choices + ("1",))


def _as_pan(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError('must be an object mapping output to input channels, e.g. {"c0": "c2"}')
    if not 1 <= len(value) <= 8:
        raise ValueError("must map 1 to 8 output channels")
    for out, src in value.items():
        if not re.fullmatch(r"c[0-7]", out):
            raise ValueError(f"output channel {_show(out)} must be c0..c7")
        if not isinstance(src, str) or not re.fullmatch(r"c(?:[0-9]|[1-5][0-9]|6[0-3])", src):
            raise ValueError(f"input channel for {out} must be c0..c63, got {_show(src)}")
    return dict(value)


def _list(item: Any, lo: int, hi: int, *, one_or_many: bool = False) -> Any:
    """An optional list of ``item`` with lo..hi entries; ``one_or_many`` also takes a single object."""
    kind = Annotated[list[item], Field(min_length=lo, max_length=hi)]
    return Annotated[kind | None, BeforeValidator(_listify)] if one_or_many else kind | None


def _listify(value: Any) -> Any:
    """Fields that take one object or a list of them are stored as a list."""
    return [value] if isinstance(value, dict) else value


# --------------------------------------------------------------------------------------------------
# Annotated field types
# --------------------------------------------------------------------------------------------------


def _t(kind: Any, parse: Callable[[Any], Any]) -> Any:
    """``kind | None`` whose wire value goes through ``parse`` (None passes untouched)."""
    return Annotated[kind | None, BeforeValidator(lambda v: None if v is None else parse(v))]


def _int(lo: int, hi: int) -> Any:
    return _t(int, lambda v: _as_int(v, lo, hi))


def _float(lo: float, hi: float, *, above_lo: bool = False) -> Any:
    return _t(float, lambda v: _as_float(v, lo, hi, above_lo=above_lo))


def _choice(choices: tuple) -> Any:
    return _t(str, lambda v: _as_choice(v, choices))


def _url(*schemes: str) -> Any:
    return _t(str, lambda v: _as_url(v, schemes))


Flag = _t(bool, _as_flag)
Text = _t(str, _as_text)
Secret = _t(str, lambda v: _as_text(v, 1024))
Token = _t(str, _as_token)
FileName = _t(str, _as_filename)
HttpUrl = _url("http", "https")
Dimension = _int(16, 8192)
Seconds = _float(0, 1e6)
Hex32 = _t(str, lambda v: _as_hex(v, (32,)))
Language = _t(str, lambda v: _as_iso639_1(v))
LanguageCode = Annotated[str, BeforeValidator(lambda v: _as_iso639_1(v))]


def _as_iso639_1(value: Any) -> str:
    return _as_choice_re(value, r"[a-z]{2}", "a two-letter ISO 639-1 code, e.g. en")


def _as_choice_re(value: Any, pattern: str, what: str) -> str:
    text = _as_str(value)
    if not re.fullmatch(pattern, text):
        raise ValueError(f"must be {what}")
    return text


def _vidmill_error(sub: str, reason: str) -> PydanticCustomError:
    """An error found across fields; ``sub`` is the field it belongs to (joined onto the model's path)."""
    return PydanticCustomError("vidmill", "{reason}", {"reason": reason, "sub": sub})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=16384)


# --------------------------------------------------------------------------------------------------
# Leaf objects
# --------------------------------------------------------------------------------------------------


class Destination(_Model):
    """Where an output is stored (S3, B2, Azure, FTP, SFTP)."""

    url: Annotated[str, BeforeValidator(lambda v: _as_url(v, DESTINATION_SCHEMES))]
    key: Secret = None
    secret: Secret = None
    permissions: _choice(S3_PERMISSIONS) = None
    storage_class: _t(str, lambda v: _as_choice_re(
        v, r"[A-Z][A-Z_]{0,63}", "an S3 storage class, e.g. STANDARD_IA")) = None
    cache_control: _t(str, lambda v: _as_choice_re(
        v, r"[A-Za-z][A-Za-z0-9=, -]{0,255}", 'cache directives like "public, max-age=86400"')) = None
    is_passive: Flag = None
    use_tls: Flag = None


class VideoCodecParameters(_Model):
    """Advanced encoder settings (x264/x265, SVT-AV1, LCEVC); x264's rate fields are in Mbps."""

    vprofile: _t(str, _as_profile) = None
    level: _t(str, _as_level) = None
    coder: _int(0, 1) = None
    flags2: _t(str, lambda v: _as_flag_seq(v, FLAGS2)) = None
    partitions: _t(str, lambda v: _as_flag_seq(v, PARTITIONS)) = None
    directpred: _int(0, 3) = None
    me_method: _choice(ME_METHODS) = None
    subq: _int(0, 11) = None
    trellis: _int(0, 2) = None
    refs: _int(0, 16) = None
    cmp: _t(str, lambda v: str(_as_int(v, 0, 15)) if not isinstance(v, str) or v.isdigit()
            else _as_choice(v, CMP_FUNCTIONS)) = None
    me_range: _int(0, 1024) = None
    sc_threshold: _int(-1, 1000) = None
    i_qfactor: _float(-31, 31) = None
    b_strategy: _int(0, 2) = None
    qcomp: _float(0, 1) = None
    qmin: _int(-1, 69) = None
    qmax: _int(-1, 1024) = None
    qdiff: _int(-1, 69) = None
    max_rate: _float(0, 200000, above_lo=True) = None
    min_rate: _float(0, 200000, above_lo=True) = None
    bufsize: _float(0, 200000, above_lo=True) = None
    sws_flags: _choice(SWS_FLAGS) = None
    preset: _choice(PRESETS) = None
    flags: _t(str, lambda v: _as_flag_seq(v, FLAGS)) = None
    rc_lookahead: _int(0, 250) = None
    # SVT-AV1
    tune: _int(0, 2) = None
    aq_mode: _int(0, 2) = None
    film_grain: _int(0, 50) = None
    fast_decode: _int(0, 2) = None
    enable_dlf: _int(0, 2) = None
    enable_restoration: _int(0, 1) = None
    hierarchical_levels: _int(2, 5) = None
    pred_struct: _int(0, 2) = None
    # LCEVC
    lcevc_tune: _choice(LCEVC_TUNES) = None
    scaling_mode_level0: _choice(("2D", "1D", "0D")) = None
    dc_dithering_type: _choice(("None", "Uniform", "none", "uniform")) = None
    dc_dithering_strength: _int(0, 10) = None
    dc_dithering_qp_start: _int(0, 51) = None
    dc_dithering_qp_saturate: _int(0, 51) = None
    m_ad_mode: _choice(("disabled", "replace", "separate")) = None
    m_hf_strength: _float(0, 1) = None
    m_lf_strength: _float(0, 1) = None

    @model_validator(mode="after")
    def _check_ranges(self) -> "VideoCodecParameters":
        if self.qmin is not None and self.qmax is not None and self.qmin > self.qmax:
            raise _vidmill_error("qmin", f"must not exceed qmax ({self.qmax})")
        return self


class Logo(_Model):
    """An image overlay, optionally for a time range."""

    source: Annotated[str, BeforeValidator(lambda v: _as_url(v, ("http", "https")))]
    x: _int(0, 8192) = None
    y: _int(0, 8192) = None
    opacity: _float(0, 1) = None
    start_time: Seconds = None
    duration: _float(0, 1e6, above_lo=True) = None


class SubtitleSource(_Model):
    source: Annotated[str, BeforeValidator(lambda v: _as_url(v, ("http", "https")))]
    language: _t(str, lambda v: _as_choice_re(
        v, r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?", "a language code like en, eng or en-US")) = None


class Subtitles(_Model):
    sources: _list(SubtitleSource, 0, 50) = None
    copy_: Flag = Field(None, alias="copy")


class Encryption(_Model):
    """AES-128 HLS encryption."""

    key: Hex32 = None
    iv: Hex32 = None
    key_url: HttpUrl = None


class CencDrm(_Model):
    """Widevine/PlayReady common encryption."""

    key: Hex32 = None
    key_id: Hex32 = None
    iv: _t(str, lambda v: _as_hex(v, (16, 32))) = None
    pssh: _t(str, _as_base64) = None
    la_url: HttpUrl = None


class FpsDrm(_Model):
    """FairPlay; ``key_url`` may be skd:// (e.g. EZDRM)."""

    key: Hex32 = None
    iv: Hex32 = None
    key_url: _url("skd", "http", "https") = None


class Inject360(_Model):
    side_data_type: Token = None
    projection: _choice(("equirectangular", "cubemap", "mesh", "fisheye")) = None
    vr180: Flag = None
    stereo: _choice(("mono", "top-bottom", "left-right")) = None
    full_width: _int(0, 65536) = None
    full_height: _int(0, 65536) = None
    cropped_width: _int(0, 65536) = None
    cropped_height: _int(0, 65536) = None
    cropped_left: _int(0, 65536) = None
    cropped_top: _int(0, 65536) = None


class StitchItem(_Model):
    """One input of a stitch job (a bare URL on the wire becomes ``StitchItem(url=...)``)."""

    url: Annotated[str, BeforeValidator(lambda v: _as_url(v, SOURCE_SCHEMES))]
    start_time: Seconds = None
    duration: _float(0, 1e6, above_lo=True) = None


# --------------------------------------------------------------------------------------------------
# Renditions: the frame/rate/codec/audio fields shared by Format and Stream
# --------------------------------------------------------------------------------------------------


class _Rendition(_Model):
    """Fields a format carries for file outputs and each stream carries for HLS/DASH renditions."""

    # frame
    size: _t(str, _as_size) = None
    width: Dimension = None
    height: Dimension = None
    resolution: Dimension = None
    rotate: _t(int, lambda v: _as_rotate(v)) = None
    aspect_ratio: _t(str, _as_aspect) = None
    resize_mode: _choice(("scale", "crop")) = None
    framerate: _t(str, _as_rate) = None
    framerate_limit: _t(str, _as_rate) = None
    keyframe: _t(str, _as_keyframe) = None
    deinterlace: Flag = None
    hdr_to_sdr: Flag = None
    # colour
    color_space: _t(str, lambda v: _as_color(v, COLOR_SPACES)) = None
    color_range: _t(str, lambda v: _as_color(v, COLOR_RANGES)) = None
    color_trc: _t(str, lambda v: _as_color(v, COLOR_TRCS)) = None
    color_primaries: _t(str, lambda v: _as_color(v, COLOR_PRIMARIES)) = None
    # rate
    quality: _int(0, 100) = None
    bitrate: _int(1, 200000) = None
    two_pass: Flag = None
    optimize_bitrate: Flag = None
    min_crf: _int(0, 51) = None
    max_crf: _int(0, 51) = None
    adjust_crf: _int(-10, 10) = None
    # codec
    video_codec: _choice(VIDEO_CODECS) = None
    profile: _t(str, _as_profile) = None
    pix_format: _choice(PIX_FORMATS) = None
    video_codec_parameters: VideoCodecParameters | None = None
    tag_video: _t(str, lambda v: _as_choice_re(v, r"[A-Za-z0-9]{4}", "a four-character codec tag, e.g. hvc1")) = None
    # audio
    audio_codec: _choice(AUDIO_CODECS) = None
    audio_bitrate: _int(8, 1024) = None
    audio_sample_rate: _t(int, lambda v: _as_sample_rate(v)) = None
    audio_channels_number: _int(1, 8) = None
    audio_mute: Flag = None
    audio_pan: _t(dict[str, str], _as_pan) = None
    # overlays and labels
    logo: _list(Logo, 1, 20, one_or_many=True) = None
    tag: Text = None

    @model_validator(mode="after")
    def _check_rendition(self) -> "_Rendition":
        codec = self.video_codec
        if self.quality is not None:
            if codec in H26X_CODECS and self.quality > 51:
                raise _vidmill_error("quality", f"must be between 0 and 51 for {codec}, got {self.quality}")
            if self.quality > 63 and getattr(self, "output", None) not in IMAGE_OUTPUTS:
                raise _vidmill_error("quality", f"must be between 0 and 63, got {self.quality}")
        if self.profile is not None and codec in PROFILES_BY_CODEC and self.profile not in PROFILES_BY_CODEC[codec]:
            raise _vidmill_error("profile", f"for {codec} must be one of {_choices(PROFILES_BY_CODEC[codec])}; "
                                            f"got {self.profile}")
        if self.min_crf is not None and self.max_crf is not None and self.min_crf > self.max_crf:
            raise _vidmill_error("min_crf", f"must not exceed max_crf ({self.max_crf})")
        return self

    @property
    def size_wh(self) -> tuple[int, int] | None:
        """``size`` as (width, height)."""
        if self.size is None:
            return None
        width, height = self.size.split("x")
        return int(width), int(height)

    @property
    def keyframe_spec(self) -> tuple[int | float, str] | None:
        """``keyframe`` as (60, "frames") or (3.0, "seconds")."""
        if self.keyframe is None:
            return None
        if self.keyframe.endswith("s"):
            return float(self.keyframe[:-1]), "seconds"
        return int(self.keyframe), "frames"

    @property
    def framerate_value(self) -> str | None:
        """The validated frame rate as FFmpeg takes it: "30", "29.97" or "30000/1001"."""
        return self.framerate

    @property
    def framerate_fraction(self) -> Fraction | None:
        """The frame rate as an exact fraction (29.97 -> 2997/100)."""
        return None if self.framerate is None else Fraction(self.framerate)

    @property
    def aspect_ratio_value(self) -> float | None:
        """``aspect_ratio`` as a float ("16:9" -> 1.777...)."""
        if self.aspect_ratio is None:
            return None
        if ":" in self.aspect_ratio:
            num, den = self.aspect_ratio.split(":")
            return float(num) / float(den)
        return float(self.aspect_ratio)


def _as_rotate(value: Any) -> int:
    number = _as_int(value, 0, 270)
    if number not in (0, 90, 180, 270):
        raise ValueError(f"must be 0, 90, 180 or 270, got {number}")
    return number


def _as_sample_rate(value: Any) -> int:
    number = _as_int(value, 8000, 192000)
    if number not in SAMPLE_RATES:
        raise ValueError(f"must be one of {_choices(SAMPLE_RATES)}; got {number}")
    return number


class Stream(_Rendition):
    """One rendition of an HLS/DASH output."""

    chunklist_name: FileName = None


class Format(_Rendition):
    """One output of the task."""

    output: Annotated[str, BeforeValidator(lambda v: _as_choice(v, OUTPUTS))]
    start_time: Seconds = None
    duration: _float(0, 1e6, above_lo=True) = None
    destination: _list(Destination, 1, 10, one_or_many=True) = None
    allow_soft_fail: Flag = None
    # streaming
    stream: _list(Stream, 1, 20) = None
    playlist_name: FileName = None
    segment_duration: _float(0.5, 120) = None
    i_frames_only: Flag = None
    fmp4: Flag = None
    create_m3u8_playlist: Flag = None
    separate_audio: Flag = None
    single_folder: Flag = None
    incremental_tag: Token = None
    packager_version: _int(1, 99) = None
    # protection
    encryption: Encryption | None = None
    cenc_drm: CencDrm | None = None
    fps_drm: FpsDrm | None = None
    # images
    time: _float(0, 1) = None
    frame_number: _int(0, 10**9) = None
    interval: _float(0, 86400, above_lo=True) = None
    image_format: _choice(("png", "jpg")) = None
    sprite: Flag = None
    columns: _int(1, 100) = None
    # overlays
    subtitles: Subtitles | None = None
    # repack
    audio_copy: Flag = None
    video_copy: Flag = None
    subtitles_copy: Flag = None
    metadata_copy: Flag = None
    # metadata
    metadata_version: _t(str, lambda v: _as_choice_re(
        _number_text(v), r"[0-9]{1,2}(?:\.[0-9]{1,3}){0,2}", "a version like 4.1.5")) = None
    # speech_to_text
    transcript: Flag = None
    transcript_name: FileName = None
    json_: Flag = Field(None, alias="json")
    json_name: FileName = None
    srt: Flag = None
    srt_name: FileName = None
    vtt: Flag = None
    vtt_name: FileName = None
    mode: _choice(("speed", "balanced", "accuracy")) = None
    language: Language = None
    translate_languages: _list(LanguageCode, 1, 50) = None
    # vmaf
    vmaf_model: Token = None
    distorted: HttpUrl = None
    n_subsample: _int(1, 1000) = None
    shortest: Flag = None
    # 360
    keep_360_metadata: Flag = None
    inject_360_metadata: Inject360 | None = None

    @model_validator(mode="after")
    def _check_container(self) -> "Format":
        video_ok = CONTAINER_VIDEO_CODECS.get(self.output)
        if video_ok is not None and self.video_codec is not None and self.video_codec not in video_ok:
            raise _vidmill_error("video_codec", f"{self.video_codec} cannot go into a {self.output} output; "
                                                f"use {_choices(tuple(sorted(video_ok)))}")
        audio_ok = CONTAINER_AUDIO_CODECS.get(self.output)
        if audio_ok is not None and self.audio_codec is not None and self.audio_codec not in audio_ok:
            raise _vidmill_error("audio_codec", f"{self.audio_codec} cannot go into a {self.output} output; "
                                                f"use {_choices(tuple(sorted(audio_ok)))}")
        if self.audio_codec == "libopus" and self.output not in ("webm", "webm_dash"):
            raise _vidmill_error("audio_codec", "libopus is only allowed with webm outputs")
        return self


class Query(_Model):
    """The ``query`` object of start_encode2."""

    source: Annotated[str | None, BeforeValidator(lambda v: None if v is None else _as_url(v, SOURCE_SCHEMES))] = None
    stitch: Annotated[_list(StitchItem, 1, 100), BeforeValidator(
        lambda v: [{"url": i} if isinstance(i, str) else i for i in v] if isinstance(v, list) else v)] = None
    format: Annotated[list[Format], Field(min_length=1, max_length=50)]
    callback_url: HttpUrl = None
    use_subtask_callback: Flag = None
    refresh_playlist: Flag = None
    retry_on_error: Flag = None
    upscale: Flag = None
    encoder_version: _int(1, 2) = None

    @model_validator(mode="after")
    def _check_input(self) -> "Query":
        if self.source is None and self.stitch is None:
            raise _vidmill_error("source", "is required (or stitch, a list of inputs)")
        if self.source is not None and self.stitch is not None:
            raise _vidmill_error("stitch", "cannot be used together with source; give one of them")
        return self


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------

# A JSON string (possessive, and an unterminated one runs to the end: linear time on any input) or a bracket.
_JSON_TOKEN_RE = re.compile(r'"(?:[^"\\]++|\\.)*+\\?(?:"|\Z)|[\[\]{}]', re.DOTALL)


class _BadJson(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise _BadJson(f"{name} is not allowed in JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _BadJson(f"number {text[:20]} is out of range")
    return number


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _BadJson(f"duplicate key {_show(key)}")
        result[key] = value
    return result


def _too_deep(text: str) -> bool:
    """Whether JSON brackets (outside strings) nest deeper than MAX_JSON_DEPTH; checked before json.loads."""
    depth = 0
    for match in _JSON_TOKEN_RE.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENT.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{_show(part)}]"
    return path


def _reason(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "vidmill":
        return ctx["reason"]
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be an object"
    if kind == "list_type":
        return "must be a list"
    if kind == "string_type":
        return "must be a string"
    if kind == "too_short":
        least = ctx.get("min_length")
        return "must not be empty" if least == 1 else f"must have at least {least} items"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    return str(error["msg"])


def _to_query_error(exc: ValidationError) -> QueryError:
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    sub = (error.get("ctx") or {}).get("sub") if error["type"] == "vidmill" else None
    if sub:
        loc += (sub,)
    path = _field_path(loc) or "query"
    return QueryError(f"{path}: {_reason(error)}", field=path)


def parse_query(raw: str | bytes | None) -> Query:
    """Parse the ``query`` form field of start_encode2 (``{"query": {...}}`` as JSON) into a ``Query``.

    Raises ``QueryMissing`` when there is no wrapped query at all and ``QueryError`` (``field`` set to
    the dotted path, e.g. ``format[0].size``) for anything malformed or invalid.
    """
    if raw is None:
        raise QueryMissing("query field is required", field="query")
    if len(raw) > MAX_QUERY_BYTES:
        raise QueryError(f"query: must be at most {MAX_QUERY_BYTES} bytes", field="query")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise QueryError("query: must be UTF-8 encoded JSON", field="query") from None
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_QUERY_BYTES:
        raise QueryError(f"query: must be at most {MAX_QUERY_BYTES} bytes", field="query")
    if not raw.strip():
        raise QueryMissing("query field is required", field="query")
    if _too_deep(raw):
        raise QueryError(f"query: JSON is nested deeper than {MAX_JSON_DEPTH} levels", field="query")
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float,
                          object_pairs_hook=_no_duplicates)
    except _BadJson as exc:
        raise QueryError(f"query: invalid JSON: {exc}", field="query") from None
    except (ValueError, RecursionError) as exc:
        raise QueryError(f"query: invalid JSON: {str(exc)[:120]}", field="query") from None
    if not isinstance(data, dict) or not isinstance(data.get("query"), dict) or not data["query"]:
        raise QueryMissing("query field is required", field="query")
    extra = [key for key in data if key != "query"]
    if extra:
        raise QueryError(f"{_field_path((extra[0],))}: unknown field beside query", field=_field_path((extra[0],)))
    try:
        return Query.model_validate(data["query"])
    except ValidationError as exc:
        raise _to_query_error(exc) from None


# --------------------------------------------------------------------------------------------------
# Support policy: what this release honours. Flip entries here as features land.
# --------------------------------------------------------------------------------------------------

SUPPORTED_OUTPUTS = frozenset({"mp4", "webm", "metadata"})
SUPPORTED_SOURCE_SCHEMES = frozenset({"http", "https"})
SUPPORTED_VIDEO_CODECS = frozenset({"libx264", "libx265", "libvpx", "libvpx-vp9"})
SUPPORTED_AUDIO_CODECS = frozenset({"aac", "libfdk_aac", "libvorbis", "libopus"})
# Accepted but encoded with another encoder (the engine adds a task warning).
AUDIO_CODEC_FALLBACKS = {"libfdk_aac": "aac"}

UNSUPPORTED_SOURCE_REASONS = {
    "tus": "direct uploads (tus:) are not supported yet by vidmill",
    "s3": "s3:// sources are not supported yet by vidmill; use an http(s) (e.g. presigned) URL",
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
})
# Defaults of fields whose default is not "absent/0" (a field equal to its default is not refused).
FORMAT_FIELD_DEFAULTS: dict[str, Any] = {
    "segment_duration": 9.0, "separate_audio": True, "audio_copy": True, "video_copy": True,
    "subtitles_copy": True, "metadata_copy": True, "transcript": True, "json": True, "srt": True,
    "vtt": True, "rotate": 0, "adjust_crf": 0, "min_crf": 0, "max_crf": 51, "transcript_name": "transcript.txt",
    "json_name": "timestamps.json", "srt_name": "subtitles.srt", "vtt_name": "subtitles.vtt", "mode": "balanced",
    "image_format": "png", "resize_mode": "scale",
}
_GROUP_REASONS = {
    "destination": "destinations (S3/FTP/SFTP/Azure) are not supported yet by vidmill",
    "stream": "streams (HLS/DASH renditions) are not supported yet by vidmill",
    "logo": "logo overlays are not supported yet by vidmill",
    "subtitles": "subtitles are not supported yet by vidmill",
    "encryption": "AES-128 encryption is not supported yet by vidmill",
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


def check_supported(q: Query) -> None:
    """Raise ``UnsupportedField`` naming the first field this release does not honour yet."""
    if q.source is not None:
        scheme = q.source.split(":", 1)[0].lower()
        if scheme not in SUPPORTED_SOURCE_SCHEMES:
            raise UnsupportedField(f"source: {UNSUPPORTED_SOURCE_REASONS.get(scheme, 'scheme not supported')}",
                                   field="source")
    for name, (default, reason) in UNSUPPORTED_QUERY_FIELDS.items():
        if not _is_default(getattr(q, name), default):
            raise UnsupportedField(f"{name}: {reason}", field=name)
    for index, fmt in enumerate(q.format):
        _check_format(fmt, f"format[{index}]")


def _refuse(path: str, reason: str) -> None:
    raise UnsupportedField(f"{path}: {reason}", field=path)


def _check_format(fmt: Format, prefix: str) -> None:
    if fmt.output not in SUPPORTED_OUTPUTS:
        _refuse(f"{prefix}.output", f"output {fmt.output} is not supported yet by vidmill; "
                                    f"use {_choices(tuple(sorted(SUPPORTED_OUTPUTS)))}")
    for attr in Format.model_fields:
        wire = _wire_name(Format, attr)
        if wire in HONOURED_FORMAT_FIELDS:
            continue
        if not _is_default(getattr(fmt, attr), FORMAT_FIELD_DEFAULTS.get(wire)):
            _refuse(f"{prefix}.{wire}", _GROUP_REASONS.get(wire, f"{wire} is not supported yet by vidmill"))
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

"""Wire value coercers for generic scalars: numbers, flags, strings, choices, names, URLs, hex and base64.

Each ``_as_*`` takes the raw wire value (never None) and returns the normalized value or raises ValueError
with a human message (the dotted field path is added by parse_query).
"""

import base64
import math
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

_INT_RE = re.compile(r"[+-]?[0-9]{1,12}")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]{1,12}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})")
_FILENAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_TUS_RE = re.compile(r"tus:[A-Za-z0-9_-]{1,128}")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,15}):")
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


def _as_choice_re(value: Any, pattern: str, what: str) -> str:
    text = _as_str(value)
    if not re.fullmatch(pattern, text):
        raise ValueError(f"must be {what}")
    return text


def _as_iso639_1(value: Any) -> str:
    return _as_choice_re(value, r"[a-z]{2}", "a two-letter ISO 639-1 code, e.g. en")

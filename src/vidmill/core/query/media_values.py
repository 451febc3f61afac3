"""Wire value coercers for media settings: frame size, rates, keyframes, aspect, levels, profiles, flag
sequences, colour, channel maps, rotation and sample rates (same contract as ``values``)."""

import re
from fractions import Fraction
from typing import Any

from vidmill.core.query.values import _as_choice, _as_int, _as_str, _choices, _number_text, _show
from vidmill.core.query.vocabulary import LEVELS, PROFILES, SAMPLE_RATES

_SIZE_RE = re.compile(r"([0-9]{1,5})[xX]([0-9]{1,5})")
_RATIONAL_RE = re.compile(r"([0-9]{1,6})/([0-9]{1,6})")
_DECIMAL_RE = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")
_KEYFRAME_S_RE = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,3})?)s")
_ASPECT_RE = re.compile(r"([0-9]{1,4}(?:\.[0-9]{1,4})?):([0-9]{1,4}(?:\.[0-9]{1,4})?)")
_FLAG_SEQ_RE = re.compile(r"(?:[+-][a-z0-9_]{1,32})+")


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

"""The annotated field types the query models are declared with, their base model and cross-field error."""

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from vidmill.core.query.values import (
    _as_choice, _as_filename, _as_flag, _as_float, _as_hex, _as_int, _as_iso639_1, _as_text, _as_token, _as_url,
)


def _list(item: Any, lo: int, hi: int, *, one_or_many: bool = False) -> Any:
    """An optional list of ``item`` with lo..hi entries; ``one_or_many`` also takes a single object."""
    kind = Annotated[list[item], Field(min_length=lo, max_length=hi)]
    return Annotated[kind | None, BeforeValidator(_listify)] if one_or_many else kind | None


def _listify(value: Any) -> Any:
    """Fields that take one object or a list of them are stored as a list."""
    return [value] if isinstance(value, dict) else value


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


def _vidmill_error(sub: str, reason: str) -> PydanticCustomError:
    """An error found across fields; ``sub`` is the field it belongs to (joined onto the model's path)."""
    return PydanticCustomError("vidmill", "{reason}", {"reason": reason, "sub": sub})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=16384)

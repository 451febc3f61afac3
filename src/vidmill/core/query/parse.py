"""The guarded parse of the ``query`` form field: size, depth, NaN and duplicate-key guards, error paths."""

import json
import math
import re
from typing import Any

from pydantic import ValidationError

from vidmill.core.query.models import Query
from vidmill.core.query.values import _show
from vidmill.errors import QueryError, QueryMissing

MAX_QUERY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

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
    return to_query_error(exc)


def load_json(raw: str | bytes, name: str = "query") -> Any:
    """Guarded ``json.loads`` for request bodies: size and depth limits, no NaN/Infinity, no duplicate keys.
    Raises ``QueryError`` naming ``name``."""
    if len(raw) > MAX_QUERY_BYTES:
        raise QueryError(f"{name}: must be at most {MAX_QUERY_BYTES} bytes", field=name)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise QueryError(f"{name}: must be UTF-8 encoded JSON", field=name) from None
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_QUERY_BYTES:
        raise QueryError(f"{name}: must be at most {MAX_QUERY_BYTES} bytes", field=name)
    if _too_deep(raw):
        raise QueryError(f"{name}: JSON is nested deeper than {MAX_JSON_DEPTH} levels", field=name)
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float,
                          object_pairs_hook=_no_duplicates)
    except _BadJson as exc:
        raise QueryError(f"{name}: invalid JSON: {exc}", field=name) from None
    except (ValueError, RecursionError) as exc:
        raise QueryError(f"{name}: invalid JSON: {str(exc)[:120]}", field=name) from None


def to_query_error(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> QueryError:
    """The first error of a pydantic validation as a ``QueryError`` with its dotted field path."""
    error = exc.errors(include_url=False)[0]
    loc = prefix + tuple(error["loc"])
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
    if len(raw) <= MAX_QUERY_BYTES and not (raw.strip() if isinstance(raw, str) else raw.strip()):
        raise QueryMissing("query field is required", field="query")
    data = load_json(raw)
    if not isinstance(data, dict) or not isinstance(data.get("query"), dict) or not data["query"]:
        raise QueryMissing("query field is required", field="query")
    extra = [key for key in data if key != "query"]
    if extra:
        raise QueryError(f"{_field_path((extra[0],))}: unknown field beside query", field=_field_path((extra[0],)))
    try:
        return Query.model_validate(data["query"])
    except ValidationError as exc:
        raise _to_query_error(exc) from None

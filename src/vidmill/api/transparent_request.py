"""TransparentEdge transcode orders and profiles: request models and their translation to vidmill's query.

An order (the ``order`` form field, JSON) names an ``origin`` to download (ftp/ftps or http/https, with
``user:password@`` in the URL as TransparentEdge's examples do), FTP ``destinations`` to upload to, and
``jobs``: one output per stored profile, written as ``filename`` under every destination. A profile's
``settings`` are one vidmill/Qencode ``format`` object (``output``, ``size``, ``bitrate``, codecs...), so a
``profile_id`` means exactly what its settings say. Credentials go into the query the worker runs, never
into what is rendered (``dialect_data`` keeps the URLs without them, and the user name as the seed shows it).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from vidmill.core.query import Format, Query
from vidmill.core.query.parse import to_query_error
from vidmill.core.query.values import _as_url
from vidmill.errors import QueryError

ORIGIN_SCHEMES = ("ftp", "ftps", "http", "https")
DESTINATION_SCHEMES = ("ftp", "ftps")
FILE_OUTPUTS = ("mp4", "webm")
_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,199}$")
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-.]{0,251}[A-Za-z0-9])?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _url(schemes: tuple[str, ...]):
    return BeforeValidator(lambda v: _as_url(v, schemes))


class Notification(_Strict):
    email: Annotated[str | None, Field(pattern=_EMAIL_RE.pattern, max_length=254)] = None
    callback_url: Annotated[str | None, BeforeValidator(
        lambda v: None if v in (None, "") else _as_url(v, ("http", "https")))] = None


class OrderJob(_Strict):
    profile_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    filename: Annotated[str, Field(pattern=_FILENAME_RE.pattern)]
    label: Annotated[str, Field(max_length=200)] = ""


class Order(_Strict):
    origin: Annotated[str, _url(ORIGIN_SCHEMES)]
    destinations: Annotated[list[Annotated[str, _url(DESTINATION_SCHEMES)]], Field(max_length=10)] = []
    notifications: Annotated[list[Notification], Field(max_length=10)] = []
    jobs: Annotated[list[OrderJob], Field(min_length=1, max_length=20)]
    thumbnails: Annotated[list[Any], Field(max_length=0)] = []  # not supported yet: refused when present
    priority: Annotated[int, Field(ge=0, le=10)] = 5


class ProfileBody(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    settings: dict


class ProfilePatch(_Strict):
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    settings: dict | None = None


def validation_error(exc: ValidationError) -> QueryError:
    err = to_query_error(exc)
    if err.field == "thumbnails":
        return QueryError("thumbnails: thumbnails are not supported yet by vidmill", field="thumbnails")
    return err


def parse_order(data: dict) -> Order:
    try:
        return Order.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def parse_settings(settings: dict) -> dict:
    """A profile's settings: one file ``format`` without a destination (orders say where outputs go)."""
    try:
        fmt = Format.model_validate(settings)
    except ValidationError as exc:
        raise to_query_error(exc, ("settings",)) from None
    if fmt.output not in FILE_OUTPUTS:
        raise QueryError(f"settings.output: must be one of {', '.join(FILE_OUTPUTS)}", field="settings.output")
    if fmt.destination:
        raise QueryError("settings.destination: profiles do not say where outputs go; orders do",
                         field="settings.destination")
    return fmt.model_dump(mode="json", exclude_unset=True)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``ftp://user:pw@host/path`` -> (``ftp://host/path``, user, pw)."""
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), user, password


def protocol(url: str) -> str:
    return url.split(":", 1)[0].upper()


def to_query(order: Order, profiles: dict[int, tuple[str, dict]]) -> tuple[Query, dict]:
    """The vidmill query of an order (``profiles``: id -> (name, settings) of the ones it names), and the
    facts the TransparentEdge renderer shows."""
    dests = [split_credentials(d) for d in order.destinations]
    formats = []
    for i, job in enumerate(order.jobs):
        _, settings = profiles[job.profile_id]
        fmt = dict(settings)
        if dests:
            fmt["destination"] = [
                {"url": f"{url.rstrip('/')}/{job.filename}",
                 **({"key": user} if user else {}), **({"secret": pw} if pw else {})}
                for url, user, pw in dests]
        formats.append(fmt)
    # the seed's transcodingnotification_set is a list, each entry with its own callback_url: every one is
    # called (the first is the task's callback URL, the others extra outbox targets)
    callbacks = list(dict.fromkeys(n.callback_url for n in order.notifications if n.callback_url))
    body: dict = {"source": order.origin, "format": formats}
    if callbacks:
        body["callback_url"] = callbacks[0]
    try:
        query = Query.model_validate(body)
    except ValidationError as exc:
        err = to_query_error(exc)
        raise QueryError(err.message.replace("source:", "origin:").replace("format[", "jobs["),
                         field=err.field) from None
    origin, origin_user, _ = split_credentials(order.origin)
    data = {
        "download": {"url": origin, "protocol": protocol(origin), "user": origin_user},
        "uploads": [{"url": url, "protocol": protocol(url), "user": user} for url, user, _ in dests],
        "notifications": [{"callback_url": n.callback_url, "email": n.email} for n in order.notifications],
        "notify_emails": list(dict.fromkeys(n.email for n in order.notifications if n.email)),  # outbox targets
        "notify_urls": callbacks,  # outbox targets too
        "jobs": [{"profile": {"id": j.profile_id, "name": profiles[j.profile_id][0]}, "filename": j.filename,
                  "label": j.label} for j in order.jobs],
        "priority": order.priority,
    }
    return query, data


DEFAULT_PRIORITY = 5  # an order that says nothing runs level with every other dialect's tasks


def task_priority(order: Order) -> int:
    """vidmill's neutral priority (0: every dialect's default; higher runs first) of an order's 0-10."""
    return order.priority - DEFAULT_PRIORITY

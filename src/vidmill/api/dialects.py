"""What the bearer-key dialects (Octet, TransparentEdge) share: auth, bounded JSON bodies, and a route
class that answers every error of a router in that router's own shape.

FastAPI's exception handlers are global to the app; a dialect's errors must not leak into another's
routes (Qencode clients read ``{"error": <int>}``, Octet clients ``{"error": "<reason>"}``, TransparentEdge
clients DRF's ``{"detail": ...}``). So each router gets ``route_class=error_route(render)``: the wrapper
catches whatever the endpoint raised (the dialect's own error, a FastAPI validation error, a bug) and
``render`` turns it into that dialect's response.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from vidmill import destinations, sources
from vidmill.config import API_KEY_RE
from vidmill.core.projects import ProjectRef
from vidmill.core.query import Query
from vidmill.core.query.parse import load_json
from vidmill.errors import NotFound, QueryError, StorageError, UnresolvedHost, UrlRefused
from vidmill.net.ssrf import check_url

log = logging.getLogger("vidmill.api")

BEARER_TOKEN_RE = API_KEY_RE  # API keys and session tokens share one shape


class AuthMissing(Exception):
    """No ``Authorization: Bearer`` header."""


class AuthInvalid(Exception):
    """A bearer token that is no API key and no live session token."""


class BodyError(Exception):
    """The body is not what the route reads (too large, not JSON, not an object)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def bearer_project(request: Request) -> ProjectRef:
    """The project whose API key (or session token from an OAuth2-style exchange) is the bearer token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() not in ("bearer", "token") or not token:
        raise AuthMissing()
    if not BEARER_TOKEN_RE.match(token):
        raise AuthInvalid()
    projects = request.app.state.runtime.projects
    try:
        return projects.by_key(token)
    except NotFound:
        pass
    try:
        return projects.by_session(token.lower())
    except NotFound:
        raise AuthInvalid() from None


async def read_body(request: Request) -> bytes:
    limit = request.app.state.runtime.settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BodyError("bad Content-Length")
        if int(declared) > limit:
            raise BodyError(f"request body too large (limit {limit} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyError(f"request body too large (limit {limit} bytes)")
    return bytes(body)


def json_object(raw: bytes | str, name: str = "body") -> dict[str, Any]:
    """A JSON object from a body or form field, with the query parser's guards (size, depth, duplicates)."""
    if not raw or not raw.strip():
        raise BodyError(f"{name}: a JSON object is required", name)
    try:
        data = load_json(raw, name)
    except QueryError as exc:
        raise BodyError(exc.message, exc.field) from None
    if not isinstance(data, dict):
        raise BodyError(f"{name}: must be a JSON object", name)
    return data


def vet_query(query: Query, settings, *, index_lone_destination: bool = True, callbacks=()) -> None:
    """Refuse at once what the fetch, the upload or the callback would refuse later (scheme, URL shape, the
    SSRF guard): ``QueryError`` named by the query's field path (``source``, ``callback_url``,
    ``format[0].destination[1]``), which each dialect renames to its own. DNS failures pass: they may heal.
    ``callbacks``: more callback URLs of the task than the query's own (vetted as ``callback_url``)."""
    checks = []
    if query.source:
        checks.append(("source", lambda: sources.vet(query.source, settings=settings)))
    for url in dict.fromkeys([query.callback_url, *callbacks]):
        if url:
            checks.append(("callback_url", lambda u=url: check_url(u, allow_private=settings.allow_private_networks)))
    for i, fmt in enumerate(query.format):
        for j, dest in enumerate(fmt.destination or []):
            target = destinations.Target.from_dict(dest.model_dump())
            indexed = index_lone_destination or len(fmt.destination) > 1
            path = f"format[{i}].destination" + (f"[{j}]" if indexed else "")
            checks.append((path, lambda t=target: destinations.vet(t, settings=settings)))
    for field, check in checks:
        try:
            check()
        except UnresolvedHost:
            continue
        except (UrlRefused, StorageError) as exc:
            raise QueryError(f"{field}: {exc.message}", field=field) from None


def error_route(render: Callable[[Request, Exception], Response]) -> type[APIRoute]:
    """An APIRoute class whose endpoints answer every exception through ``render``."""

    class DialectRoute(APIRoute):
        def get_route_handler(self):
            handler = super().get_route_handler()

            async def endpoint(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:  # noqa: BLE001  every error gets the dialect's shape
                    if not isinstance(exc, (RequestValidationError,)) and _is_bug(exc):
                        log.exception("internal error on %s", request.url.path)
                    return render(request, exc)

            return endpoint

    return DialectRoute


def _is_bug(exc: Exception) -> bool:
    return not isinstance(exc, (AuthMissing, AuthInvalid, BodyError, NotFound, QueryError)) and \
        not getattr(exc, "expected", False)

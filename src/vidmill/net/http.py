"""The pinned HTTP client: requests go to the IP the SSRF guard vetted, never to a fresh DNS answer.

The connection always goes to ``ResolvedUrl.connect_url`` with the real name in the ``Host`` header and,
for https, as the TLS SNI / certificate name. httpx never resolves the name itself, so a DNS answer that
changes between the check and the connection (rebinding) cannot redirect us. Used by the http(s) source
and by callback delivery.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from vidmill import __version__
from vidmill.errors import SourceError
from vidmill.net.ssrf import ResolvedUrl

USER_AGENT = f"vidmill/{__version__}"


def new_client(*, timeout: httpx.Timeout | float, verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """An httpx client fit for pinned requests.

    No environment proxies (a proxy would resolve the name itself), no automatic redirects, and no
    keep-alive: a pooled connection is keyed by IP, so reusing one for another host name on the same IP
    would skip that name's TLS verification. ``verify`` is an ``ssl.SSLContext`` for a private CA.
    """
    return httpx.Client(
        timeout=timeout,
        verify=verify,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def pinned_request(
    client: httpx.Client,
    method: str,
    resolved: ResolvedUrl,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    timeout: Any = httpx.USE_CLIENT_DEFAULT,
    extensions: Mapping[str, Any] | None = None,
) -> httpx.Request:
    """Build a request that connects to ``resolved.ip`` while speaking to ``resolved.host``.

    ``extensions`` are extra httpx request extensions (``trace``); the TLS name ones always win.
    """
    merged = {"Host": resolved.host_header, "User-Agent": USER_AGENT, **(headers or {})}
    return client.build_request(
        method,
        resolved.connect_url,
        headers=merged,
        content=content,
        timeout=timeout,
        extensions={**(extensions or {}), **resolved.request_extensions},
    )


@contextmanager
def map_httpx_errors(host: str, what: str = "source download failed") -> Iterator[None]:
    """Translate httpx's exceptions into ``SourceError`` once, here (``raise ... from exc``)."""
    try:
        yield
    except httpx.ConnectTimeout as exc:
        raise SourceError(f"{what}: connecting to {host} timed out") from exc
    except httpx.ReadTimeout as exc:
        raise SourceError(f"{what}: {host} sent no data in time (read timeout)") from exc
    except httpx.TimeoutException as exc:
        raise SourceError(f"{what}: {host} timed out") from exc
    except httpx.ConnectError as exc:
        raise SourceError(f"{what}: cannot connect to {host} ({exc})") from exc
    except httpx.HTTPError as exc:
        raise SourceError(f"{what}: {type(exc).__name__} from {host} ({exc})") from exc

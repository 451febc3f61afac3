"""Fetch an http(s) source into the job's work dir, through the SSRF guard at every hop.

The connection always goes to the IP the guard vetted (``ResolvedUrl.connect_url``), with the real name in
the ``Host`` header and, for https, as the TLS SNI / certificate name. httpx never resolves the name itself,
so a DNS answer that changes between the check and the connection (rebinding) cannot redirect us.
Redirects are followed by hand so each ``Location`` is vetted the same way.
"""

from __future__ import annotations

import http
import os
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from vidmill import __version__
from vidmill.errors import SourceError, SourceTooLarge
from vidmill.storage.ssrf import ResolvedUrl, check_url

USER_AGENT = f"vidmill/{__version__}"
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE = 1 << 16

ProgressCallback = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class FetchResult:
    """A downloaded source: where it is, how many bytes, and the server's ``Content-Type`` if any."""

    path: Path
    size: int
    content_type: str | None


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
) -> httpx.Request:
    """Build a request that connects to ``resolved.ip`` while speaking to ``resolved.host``."""
    merged = {"Host": resolved.host_header, "User-Agent": USER_AGENT, **(headers or {})}
    return client.build_request(
        method,
        resolved.connect_url,
        headers=merged,
        content=content,
        timeout=timeout,
        extensions=resolved.request_extensions,
    )


def fetch(
    url: str,
    dest: Path,
    *,
    settings: Any,
    on_progress: ProgressCallback | None = None,
    client: httpx.Client | None = None,
) -> FetchResult:
    """Download ``url`` to ``dest`` (via ``dest.with_suffix('.part')`` and an atomic rename).

    ``on_progress(bytes_so_far, total_or_None)`` is called after every chunk; throttle in the callback.
    Raises ``UrlRefused`` (guard, any hop), ``SourceTooLarge`` (``settings.max_source_bytes``) or
    ``SourceError`` (HTTP status, timeouts, network). On any failure no partial file is left behind.
    A given ``client`` should come from ``new_client``.
    """
    dest = Path(dest)
    own_client = client is None
    if client is None:
        client = new_client(
            timeout=httpx.Timeout(settings.source_read_timeout, connect=settings.source_connect_timeout)
        )
    try:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            resolved = check_url(current, allow_private=settings.allow_private_networks)
            # identity: the size limit and progress then count the bytes that land on disk.
            request = pinned_request(client, "GET", resolved, headers={"Accept-Encoding": "identity"})
            with map_httpx_errors(resolved.host):
                response = client.send(request, stream=True)
            try:
                if response.status_code in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise SourceError(f"source download failed: HTTP {_status(response)} without Location")
                    current = urljoin(current, location)
                    continue
                if not response.is_success:
                    raise SourceError(f"source download failed: HTTP {_status(response)}")
                return _save(response, dest, resolved.host, settings.max_source_bytes, on_progress)
            finally:
                response.close()
        raise SourceError(f"source download failed: more than {MAX_REDIRECTS} redirects")
    finally:
        if own_client:
            client.close()


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


def _save(
    response: httpx.Response,
    dest: Path,
    host: str,
    limit: int,
    on_progress: ProgressCallback | None,
) -> FetchResult:
    total = _content_length(response)
    if total is not None and total > limit:
        raise SourceTooLarge(f"source is {total} bytes, over the limit of {limit} bytes")
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        total = None  # the header counts encoded bytes; we count decoded ones
    part = dest.with_suffix(".part")
    size = 0
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as out, map_httpx_errors(host):
            for chunk in response.iter_bytes(CHUNK_SIZE):
                size += len(chunk)
                if size > limit:
                    raise SourceTooLarge(f"source is over the limit of {limit} bytes (aborted while downloading)")
                out.write(chunk)
                if on_progress is not None:
                    on_progress(size, total)
        os.replace(part, dest)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise SourceError(f"source download failed: cannot write {dest.name} ({exc.strerror or exc})") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return FetchResult(path=dest, size=size, content_type=response.headers.get("content-type"))


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _status(response: httpx.Response) -> str:
    reason = response.reason_phrase
    if not reason:
        try:
            reason = http.HTTPStatus(response.status_code).phrase
        except ValueError:
            reason = ""
    return f"{response.status_code} {reason}".rstrip()

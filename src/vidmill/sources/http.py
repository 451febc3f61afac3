"""Fetch an http(s) source into the job's work dir, through the SSRF guard at every hop.

The connection always goes to the IP the guard vetted (``ResolvedUrl.connect_url``), with the real name in
the ``Host`` header and, for https, as the TLS SNI / certificate name. httpx never resolves the name itself,
so a DNS answer that changes between the check and the connection (rebinding) cannot redirect us.
Redirects are followed by hand so each ``Location`` is vetted the same way.

Besides the per-read timeout, a download has an overall deadline and can be cancelled from another thread.
A small watchdog thread enforces both even while a read is blocked: it shuts down the connection's socket
(which httpx hands us through its ``trace`` extension), so a source trickling one byte a minute cannot
hold a worker past the deadline.
"""

from __future__ import annotations

import http
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from vidmill.errors import SourceError, SourceTooLarge, UrlRefused
from vidmill.net.http import map_httpx_errors, new_client, pinned_request
from vidmill.net.ssrf import check_url
from vidmill.sources.result import FetchResult

SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE = 1 << 16
DEFAULT_TOTAL_TIMEOUT = 6 * 3600.0  # when settings has no source_total_timeout
CANCEL_POLL_S = 0.1  # how often the watchdog looks at the cancel event

ProgressCallback = Callable[[int, "int | None"], None]


def fetch(
    url: str,
    dest: Path,
    *,
    settings: Any,
    on_progress: ProgressCallback | None = None,
    client: httpx.Client | None = None,
    cancel: threading.Event | None = None,
    deadline_s: float | None = None,
    project_id: int | None = None,
) -> FetchResult:
    """Download ``url`` to ``dest`` (via ``dest.with_suffix('.part')`` and an atomic rename).

    ``on_progress(bytes_so_far, total_or_None)`` is called after every chunk; throttle in the callback.
    ``cancel``, once set (shutdown, lost lease), aborts the download with ``SourceError("download
    cancelled")`` within about ``CANCEL_POLL_S``. ``deadline_s`` bounds the whole download (every hop,
    headers and body) in wall time; ``None`` means ``settings.source_total_timeout`` (6 h when the
    setting does not exist); past it: ``SourceError("source download took longer than N s")``. Both
    interrupt a read that is blocked waiting for the server.
    Raises ``UrlRefused`` (guard, any hop), ``SourceTooLarge`` (``settings.max_source_bytes``) or
    ``SourceError`` (HTTP status, timeouts, network, cancel, deadline). On any failure no partial file is
    left behind. A given ``client`` should come from ``new_client``.
    """
    dest = Path(dest)
    if deadline_s is None:
        deadline_s = getattr(settings, "source_total_timeout", DEFAULT_TOTAL_TIMEOUT)
    if deadline_s is not None and not deadline_s > 0:
        raise ValueError(f"deadline_s must be a positive number of seconds, not {deadline_s!r}")
    own_client = client is None
    if client is None:
        client = new_client(
            timeout=httpx.Timeout(settings.source_read_timeout, connect=settings.source_connect_timeout)
        )
    watch = _Watchdog(cancel, deadline_s)
    try:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            watch.check()
            resolved = check_url(current, allow_private=settings.allow_private_networks)
            # identity: the size limit and progress then count the bytes that land on disk.
            request = pinned_request(
                client,
                "GET",
                resolved,
                headers={"Accept-Encoding": "identity"},
                timeout=watch.cap_connect(client.timeout),
                extensions={"trace": watch.trace},
            )
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
                return _save(response, dest, resolved.host, settings.max_source_bytes, on_progress, watch.check)
            finally:
                response.close()
        raise SourceError(f"source download failed: more than {MAX_REDIRECTS} redirects")
    except Exception as exc:
        # The watchdog shut the socket down: whatever httpx made of that, the reason is cancel / deadline.
        if watch.reason is not None and not isinstance(exc, (UrlRefused, SourceTooLarge)):
            if isinstance(exc, SourceError) and exc.message == watch.reason:
                raise
            raise SourceError(watch.reason) from exc
        raise
    finally:
        watch.close()
        if own_client:
            client.close()


class _Watchdog:
    """Cancel event and overall deadline of one ``fetch``.

    ``check()`` raises between steps and per chunk. For a read that blocks, a daemon thread waits for the
    cancel event or the deadline and then shuts down every socket the request opened (reported by httpx's
    ``trace`` extension), which makes the blocked read return at once; ``fetch`` then reports ``reason``.
    """

    def __init__(self, cancel: threading.Event | None, deadline_s: float | None):
        self.cancel = cancel
        self.deadline_s = deadline_s
        self.ends = None if deadline_s is None else time.monotonic() + deadline_s
        self.reason: str | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if cancel is not None or self.ends is not None:
            self._thread = threading.Thread(target=self._run, name="vidmill-fetch-watchdog", daemon=True)
            self._thread.start()

    def _why(self) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return "download cancelled"
        if self.ends is not None and time.monotonic() >= self.ends:
            return f"source download took longer than {self.deadline_s:g} s"
        return None

    def check(self) -> None:
        reason = self.reason or self._why()
        if reason is not None:
            raise SourceError(reason)

    def cap_connect(self, timeout: httpx.Timeout) -> httpx.Timeout:
        """The client's timeouts with ``connect`` (which also bounds the TLS handshake) cut to the time left."""
        if self.ends is None:
            return timeout
        left = max(0.001, self.ends - time.monotonic())
        connect = left if timeout.connect is None else min(timeout.connect, left)
        return httpx.Timeout(connect=connect, read=timeout.read, write=timeout.write, pool=timeout.pool)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx/httpcore ``trace`` hook: remember the socket of every connection and TLS layer."""
        if not event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sockets.append(sock)
            if self.reason is not None:
                _shutdown(sock)

    def _run(self) -> None:
        while True:
            if self.cancel is None:
                wait = self.ends - time.monotonic() if self.ends is not None else None
            else:
                left = math.inf if self.ends is None else self.ends - time.monotonic()
                wait = min(CANCEL_POLL_S, left)
            if self._done.wait(max(0.0, wait) if wait is not None else None):
                return
            reason = self._why()
            if reason is not None:
                with self._lock:
                    if self._done.is_set():
                        return
                    self.reason = reason
                    for sock in self._sockets:
                        _shutdown(sock)
                return

    def close(self) -> None:
        with self._lock:
            self._done.set()
            self._sockets.clear()
        if self._thread is not None:
            self._thread.join(timeout=1)


def _shutdown(sock: socket.socket) -> None:
    # The plain socket call even for an SSLSocket: no TLS close_notify from this thread, just make the
    # reader's recv() return. A socket already closed or detached (wrapped by TLS) raises OSError.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _save(
    response: httpx.Response,
    dest: Path,
    host: str,
    limit: int,
    on_progress: ProgressCallback | None,
    check: Callable[[], None] | None = None,
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
                if check is not None:
                    check()  # cancel / deadline
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


def vet(url: str, *, settings: Any) -> None:
    """The SSRF guard on the first hop (redirects are vetted as they come)."""
    check_url(url, allow_private=settings.allow_private_networks)

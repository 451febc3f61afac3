"""HTTP callbacks: the signature, the retry policy, and the sender that makes one signed POST.

The outbox (``notify.outbox``) owns what to send and the deliverer (``notify.deliverer``) owns when; each
dialect renders the body (Qencode: a form, see ``api/qencode_render.py``). This module holds the pure
pieces and the single POST.

Verifying a callback
--------------------
Every callback carries two headers::

    X-Vidmill-Timestamp: 1767225600
    X-Vidmill-Signature: sha256=<hex HMAC-SHA256(secret, b"<timestamp>." + raw_body)>

``secret`` is the project's callback secret. Compute the HMAC over the **raw** request body (before any
form parsing), compare in constant time, and reject timestamps more than five minutes from your clock
(replays). In Python::

    from vidmill.notify.callbacks import verify
    ok = verify(secret, raw_body, request.headers["X-Vidmill-Timestamp"],
                request.headers["X-Vidmill-Signature"])

or by hand::

    expected = "sha256=" + hmac.new(secret.encode(), f"{ts}.".encode() + raw_body, "sha256").hexdigest()
    ok = hmac.compare_digest(expected, signature) and abs(time.time() - int(ts)) <= 300
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from vidmill.errors import UnresolvedHost, UrlRefused
from vidmill.notify.outbox import Outgoing, SendResult
from vidmill.net.http import new_client, pinned_request
from vidmill.net.ssrf import check_url

TIMESTAMP_HEADER = "X-Vidmill-Timestamp"
SIGNATURE_HEADER = "X-Vidmill-Signature"
SIGNATURE_PREFIX = "sha256="


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for a fixed time: ``base * factor**(attempt-1)``, capped at ``max_delay``,
    spread by ``jitter`` (a fraction: 0.25 spreads each delay uniformly over ±25 %), for ``horizon`` seconds
    from the event (or from a redelivery on demand); then the delivery is given up.
    """

    base: float = 5.0
    factor: float = 2.0
    max_delay: float = 3600.0
    jitter: float = 0.25
    horizon: float = 3 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.factor < 1 or self.max_delay < self.base:
            raise ValueError("need base > 0, factor >= 1 and max_delay >= base")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be a fraction in [0, 1)")
        if self.horizon < 0:
            raise ValueError("horizon must be >= 0 seconds")

    @classmethod
    def from_settings(cls, settings: Any) -> "RetryPolicy":
        return cls(base=settings.callback_retry_base, max_delay=settings.callback_retry_max_delay,
                   horizon=settings.callback_retry_horizon)

    def next_delay(self, attempt: int, *, rand: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based).

        ``rand`` in [0, 1) places the delay inside the jitter band (0.5 = no jitter); pass it for a
        deterministic answer, otherwise ``random.random()`` is used.
        """
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        # exponent capped so factor**n never overflows for absurd attempt numbers
        raw = min(self.max_delay, self.base * self.factor ** min(attempt - 1, 64))
        if self.jitter:
            r = random.random() if rand is None else rand
            raw *= 1 + self.jitter * (2 * r - 1)
        return min(self.max_delay, raw)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Vidmill-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``b"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), f"{int(timestamp)}.".encode() + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify(
    secret: str,
    body: bytes,
    timestamp: int | str,
    signature: str,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """True if ``signature`` is ``sign(secret, body, timestamp)`` and the timestamp is within tolerance."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, ts).encode(), str(signature).encode())


def signature_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, body, ts)}


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class HttpSender:
    """POSTs a rendered callback once, signed with the project's secret.

    The URL goes through the SSRF guard and the connection is pinned to the vetted IP; redirects are not
    followed (a 3xx is a failure). A URL the guard refuses is final, unless its host did not resolve (DNS may
    come back); so is 410 Gone. Every other failure is retried by the deliverer, after ``Retry-After`` if
    the receiver sent one.
    """

    def __init__(self, settings: Any, client: httpx.Client | None = None):
        self.settings = settings
        self.client = client  # one from net.http.new_client, or None: a fresh one per send

    def send(self, outgoing: Outgoing, *, secret: str) -> SendResult:
        url = outgoing.target
        host = _host_of(url)
        try:
            resolved = check_url(url, allow_private=self.settings.allow_private_networks)
        except UrlRefused as exc:
            return SendResult(False, error=f"refused: {exc.message}",
                              final=not isinstance(exc, UnresolvedHost))
        host = resolved.host
        headers = {**outgoing.headers, "Content-Type": outgoing.content_type,
                   **signature_headers(secret, outgoing.body)}
        timeout = self.settings.callback_timeout
        client = self.client or new_client(timeout=timeout)
        try:
            request = pinned_request(client, "POST", resolved, headers=headers, content=outgoing.body,
                                     timeout=timeout)
            try:
                response = client.send(request, follow_redirects=False)
            except httpx.TimeoutException:
                return SendResult(False, error=f"{host}: timed out after {timeout:g} s")
            except httpx.HTTPError as exc:
                return SendResult(False, error=f"{host}: {type(exc).__name__} ({exc})")
            response.close()
        finally:
            if self.client is None:
                client.close()
        code = response.status_code
        if response.is_success:
            return SendResult(True, http_status=code)
        return SendResult(False, http_status=code, error=f"HTTP {code}", final=code == 410,
                          retry_after=retry_after_seconds(response.headers.get("retry-after")))


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or "(no host)"
    except (TypeError, ValueError):
        return "(invalid URL)"

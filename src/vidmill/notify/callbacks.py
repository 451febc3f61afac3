"""Qencode-style task callbacks: the form, the signature, one delivery attempt, the retry policy.

The outbox loop (elsewhere) owns persistence and timing; this module holds the pure pieces and the
single POST.

What a receiver gets
--------------------
``POST <callback_url>`` with ``Content-Type: application/x-www-form-urlencoded`` and the fields
``task_token``, ``event`` (``queued``, ``saved``, ``error``, ...), ``callback_type`` (``task``),
``status`` (the /v1/status object for the task, as a JSON string), ``payload`` (verbatim; empty when the
task has none) and, on ``error`` events only, ``error_code`` and ``error_message``. Receivers should dedupe on
``task_token`` + ``event``: a callback may be delivered more than once.

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
import json
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from vidmill.errors import DeliveryError, UrlRefused
from vidmill.net.http import new_client, pinned_request
from vidmill.net.ssrf import check_url

TIMESTAMP_HEADER = "X-Vidmill-Timestamp"
SIGNATURE_HEADER = "X-Vidmill-Signature"
SIGNATURE_PREFIX = "sha256="
ERROR_EVENTS = frozenset({"error"})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``base * factor**(attempt-1)``, capped at ``max_delay``.

    ``max_attempts`` counts deliveries in total (the first try included). ``jitter`` is a fraction:
    0.1 spreads each delay uniformly over ±10 %.
    """

    max_attempts: int = 8
    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base <= 0 or self.factor < 1 or self.max_delay < self.base:
            raise ValueError("need base > 0, factor >= 1 and max_delay >= base")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be a fraction in [0, 1)")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> "RetryPolicy":
        return cls(max_attempts=settings.callback_max_attempts, **overrides)

    def next_delay(self, attempt: int, *, rand: float | None = None) -> float | None:
        """Seconds to wait after failed try number ``attempt`` (1-based), or ``None``: give up.

        ``rand`` in [0, 1) places the delay inside the jitter band (0.5 = no jitter); pass it for a
        deterministic answer, otherwise ``random.random()`` is used.
        """
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        if attempt >= self.max_attempts:
            return None
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


def qencode_form(
    task_token: str,
    event: str,
    status: dict[str, Any],
    payload: str | None,
    *,
    callback_type: str = "task",
    error_code: int | None = None,
    error_message: str | None = None,
) -> dict[str, str]:
    """The form fields of one Qencode callback (see the module docstring).

    ``error_code`` / ``error_message`` are sent on error events only (code 1, "internal", if not given).
    """
    form = {
        "task_token": task_token,
        "event": event,
        "callback_type": callback_type,
        # json.dumps defaults (", " and ": "): what Qencode's own examples show
        "status": json.dumps(status),
        # always present (empty when the task has none): receivers read form["payload"] unconditionally
        "payload": "" if payload is None else payload,
    }
    if event in ERROR_EVENTS:
        form["error_code"] = str(1 if error_code is None else int(error_code))
        form["error_message"] = error_message or ""
    return form


def deliver(
    url: str,
    form: dict[str, str],
    *,
    secret: str,
    settings: Any,
    client: httpx.Client | None = None,
) -> None:
    """POST ``form`` to ``url`` once, signed; raise ``DeliveryError`` unless the receiver answers 2xx.

    The URL goes through the SSRF guard and the connection is pinned to the vetted IP; redirects are
    not followed (a 3xx is a failure). A refused URL raises ``DeliveryError`` whose ``__cause__`` is the
    ``UrlRefused``: retrying cannot help, unless it is an ``UnresolvedHost`` (DNS may come back). A given ``client`` should come from ``net.http.new_client``.
    """
    host = _host_of(url)
    try:
        resolved = check_url(url, allow_private=settings.allow_private_networks)
    except UrlRefused as exc:
        raise DeliveryError(f"callback to {host} refused: {exc.message}") from exc
    host = resolved.host
    body = urlencode(form).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signature_headers(secret, body)}
    own_client = client is None
    if client is None:
        client = new_client(timeout=settings.callback_timeout)
    try:
        request = pinned_request(
            client, "POST", resolved, headers=headers, content=body, timeout=settings.callback_timeout
        )
        try:
            response = client.send(request, follow_redirects=False)
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"callback to {host} failed: timed out") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"callback to {host} failed: {type(exc).__name__} ({exc})") from exc
        response.close()
        if not response.is_success:
            raise DeliveryError(f"callback to {host} failed: HTTP {response.status_code}")
    finally:
        if own_client:
            client.close()


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or "(no host)"
    except (TypeError, ValueError):
        return "(invalid URL)"

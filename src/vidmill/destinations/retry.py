"""Retry policy for uploads: a value object with a pure ``next_delay(attempt, exc)``."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from vidmill.errors import StorageError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n (1-based) waits up to ``base * 2**(n-1)``, capped."""

    max_attempts: int = 4
    base: float = 0.5
    cap: float = 10.0

    def next_delay(self, attempt: int, transient: bool, *, rand: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; ``None`` when the failure is final."""
        if not transient or attempt >= self.max_attempts:
            return None
        return min(self.cap, self.base * 2 ** (attempt - 1)) * (0.5 + rand() / 2)


def with_retries(operation: Callable[[], T], *, policy: RetryPolicy, is_transient: Callable[[BaseException], bool],
                 cancel: threading.Event | None = None) -> T:
    """Run ``operation`` until it succeeds, fails for good, or ``cancel`` is set (then ``StorageError``)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except Exception as exc:
            delay = policy.next_delay(attempt, is_transient(exc))
            if delay is None:
                raise
            if cancel is not None and cancel.wait(delay):
                raise StorageError("upload cancelled") from exc
            if cancel is None:
                threading.Event().wait(delay)

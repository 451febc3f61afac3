"""The executor seam: something that takes queued jobs from the store and runs them.

``local`` runs them in this process (the embedded default); a later ``celery`` executor runs
them on ``vidmill worker`` hosts. Either way the store is the truth: executors only claim.
"""

from __future__ import annotations

from typing import Protocol


class Executor(Protocol):
    def start(self) -> None:
        """Begin taking work."""

    def submit(self) -> None:
        """New work was queued: wake up now rather than at the next poll."""

    def alive(self) -> bool:
        """Whether the executor can run work now (reported by /healthz)."""

    def stop(self) -> None:
        """Stop taking work; running jobs are stopped and handed back to the queue."""

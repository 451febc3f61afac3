"""The callback outbox: rows written in the state change's own transaction, delivered later.

Dialects register a renderer that turns (task, event) into the request their users expect;
``enqueue`` snapshots it in the caller's transaction, so a callback is never sent for a state
that was not committed, and nothing is lost across a restart.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Callable, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from vidmill.errors import DeliveryError, UnresolvedHost, UrlRefused
from vidmill.store.db import Database
from vidmill.store.models import Outbox, Project, Task, utcnow

log = logging.getLogger("vidmill.notify")


class Renderer(Protocol):
    def __call__(self, session: Session, task: Task, event: str, error_code: int | None,
                 error_message: str | None) -> dict[str, str] | None: ...


RENDERERS: dict[str, Renderer] = {}
# What a dialect does when a callback delivery first fails (Qencode: a task warning); retries go on.
ON_FAILURE: dict[str, Callable[[Session, Task, Outbox], None]] = {}


def enqueue(session: Session, task: Task, event: str, *, error_code: int | None = None,
            error_message: str | None = None) -> None:
    if not task.callback_url:
        return
    render = RENDERERS.get(task.dialect)
    if render is None:
        return
    body = render(session, task, event, error_code, error_message)
    if body is not None:
        session.add(Outbox(task_id=task.id, event=event, target=task.callback_url, body=body))


class Deliverer:
    """Sends due outbox rows and retries with the policy's backoff; a failure never touches the task's state."""

    def __init__(self, db: Database, settings, deliver_fn=None, policy=None):
        from vidmill.notify import callbacks

        self.db = db
        self.settings = settings
        self.deliver_fn = deliver_fn or callbacks.deliver
        self.policy = policy or callbacks.RetryPolicy(max_attempts=settings.callback_max_attempts)
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="vidmill-callbacks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread:
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception:  # the deliverer must outlive any single bad row or DB hiccup
                log.exception("callback delivery loop failed")
                sent = 0
            if not sent:
                self.wake.wait(timeout=self.settings.poll_interval)
                self.wake.clear()

    def run_once(self) -> int:
        with self.db.tx() as s:
            rows = s.scalars(
                select(Outbox)
                .where(Outbox.delivered_at.is_(None), Outbox.failed_at.is_(None), Outbox.next_try <= utcnow())
                .order_by(Outbox.id)
                .limit(20)
            ).all()
            todo = [(r.id, r.target, dict(r.body), r.task_id) for r in rows]
            secrets_ = {}
            for _, _, _, task_id in todo:
                task = s.get(Task, task_id)
                secrets_[task_id] = s.get(Project, task.project_id).callback_secret
        for row_id, target, body, task_id in todo:
            if self._stop.is_set():
                break
            try:
                self.deliver_fn(target, body, secret=secrets_[task_id], settings=self.settings)
                error, final = None, False
            except DeliveryError as exc:
                # a URL the SSRF guard refuses will never become deliverable: no retries. A host that did
                # not resolve may resolve after a DNS outage: retried like any other failure.
                cause = exc.__cause__
                error = exc.message
                final = isinstance(cause, UrlRefused) and not isinstance(cause, UnresolvedHost)
            self._record(row_id, error, final=final)
        return len(todo)

    def _record(self, row_id: int, error: str | None, *, final: bool = False) -> None:
        with self.db.tx() as s:
            row = s.get(Outbox, row_id)
            row.attempts += 1
            if error is None:
                row.delivered_at = utcnow()
                return
            row.last_error = error
            task = s.scalars(select(Task).where(Task.id == row.task_id).with_for_update()).one()
            if row.attempts == 1:
                # tell the user at the first failure (the task may be long finished by the last retry)
                hook = ON_FAILURE.get(task.dialect)
                if hook:
                    hook(s, task, row)
            delay = None if final else self.policy.next_delay(row.attempts)
            if delay is None:
                row.failed_at = utcnow()
                log.warning("callback %s for task %s given up: %s", row.event, task.token, error)
            else:
                row.next_try = utcnow() + timedelta(seconds=delay)

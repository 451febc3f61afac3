"""The deliverer: sends due outbox rows in order per destination, retries with backoff, logs every attempt.

Order: a row is due only when no earlier pending row of the same (task, channel, target) exists, so a later
event always waits for the earlier one. A taken row is leased (its ``next_try`` moves past the send's
timeout), so two deliverers (the server and a CLI ``redeliver``) do not send it at once, and a process that
dies mid-send leaves it to be retried. Failures never touch the task's state.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Mapping

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import aliased

from vidmill.core.tasks import restore
from vidmill.notify.callbacks import HttpSender, RetryPolicy
from vidmill.notify.outbox import HTTP, DeliveryState, Notice, Outgoing, Renderer, Sender, SendResult
from vidmill.store.db import Database
from vidmill.store.models import DeliveryAttempt, Outbox, Project, Task, utcnow

log = logging.getLogger("vidmill.notify")

PENDING = DeliveryState.PENDING.value


class Deliverer:
    """Sends due outbox rows; ``renderers`` maps a dialect name to its renderer, ``senders`` a channel to
    its sender (``http`` by default). Both are passed in by whoever builds the runtime: no global registry."""

    def __init__(self, db: Database, settings, renderers: Mapping[str, Renderer], *,
                 senders: Mapping[str, Sender] | None = None, policy: RetryPolicy | None = None,
                 batch: int = 20, concurrency: int = 4):
        self.db = db
        self.settings = settings
        self.renderers = dict(renderers)
        self.senders = dict(senders) if senders is not None else {HTTP: HttpSender(settings)}
        self.policy = policy or RetryPolicy.from_settings(settings)
        self.batch = batch
        self.concurrency = concurrency
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- the loop ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="vidmill-send")
        self._thread = threading.Thread(target=self._loop, name="vidmill-callbacks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread:
            self._thread.join(timeout=15)
        if self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)

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

    # -- one round ---------------------------------------------------------------------------------------
    def run_once(self, *, task_id: int | None = None) -> int:
        """Send every row due now (only ``task_id``'s if given); returns how many were tried."""
        todo = self._take(task_id)
        if not todo:
            return 0
        if self._pool is None or len(todo) == 1:
            for item in todo:
                self._deliver(*item)
        else:  # rows in one batch belong to different queues: sending them side by side keeps each order
            list(self._pool.map(lambda item: self._deliver(*item), todo))
        return len(todo)

    def _take(self, task_id: int | None) -> list[tuple[Notice, str, str]]:
        now = utcnow()
        earlier = aliased(Outbox)
        blocked = exists().where(and_(earlier.task_id == Outbox.task_id, earlier.channel == Outbox.channel,
                                      earlier.target == Outbox.target, earlier.state == PENDING,
                                      earlier.id < Outbox.id))
        q = select(Outbox).where(Outbox.state == PENDING, Outbox.next_try <= now, ~blocked)
        if task_id is not None:
            q = q.where(Outbox.task_id == task_id)
        q = q.order_by(Outbox.next_try, Outbox.id).limit(self.batch)
        if not self.db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        lease = timedelta(seconds=self.settings.callback_timeout + 30)
        todo = []
        with self.db.tx() as s:
            for row in s.scalars(q).all():
                row.next_try = now + lease
                task = s.get(Task, row.task_id)
                secret = s.get(Project, task.project_id).callback_secret
                view = restore(row.snapshot) if row.snapshot else None
                if view is None:  # a row from before snapshots: render the task as it is now
                    from vidmill.core.tasks import task_view

                    view = task_view(s, task, deliveries=False)
                notice = Notice(row.id, row.event, row.channel, row.target, view, dict(row.details or {}),
                                row.attempts + 1, row.created_at)
                todo.append((notice, row.dialect, secret))
        return todo

    def _deliver(self, notice: Notice, dialect: str, secret: str) -> None:
        started, t0 = utcnow(), time.monotonic()
        outgoing: Outgoing | None = None
        renderer = self.renderers.get(dialect)
        try:
            if renderer is None:
                result = SendResult(False, error=f"no callback renderer for dialect {dialect!r}", final=True)
            else:
                outgoing = renderer.render(notice)
                if outgoing is None:
                    self._skip(notice.id)
                    return
                sender = self.senders.get(outgoing.channel)
                if sender is None:
                    result = SendResult(False, error=f"no sender for channel {outgoing.channel!r}", final=True)
                else:
                    result = sender.send(outgoing, secret=secret)
        except Exception as exc:  # a renderer or sender bug: recorded, given up, redeliverable once fixed
            log.exception("delivery %s crashed", notice.id)
            result = SendResult(False, error=f"internal error: {type(exc).__name__}: {exc}", final=True)
        self._record(notice, started, (time.monotonic() - t0) * 1000, result)

    def _skip(self, row_id: int) -> None:
        with self.db.tx() as s:
            row = s.get(Outbox, row_id)
            row.state = DeliveryState.SKIPPED.value

    def _record(self, notice: Notice, started, duration_ms: float, result: SendResult) -> None:
        with self.db.tx() as s:
            row = s.get(Outbox, notice.id)
            s.add(DeliveryAttempt(outbox_id=row.id, at=started, duration_ms=duration_ms,
                                  http_status=result.http_status, error=result.error))
            row.attempts += 1
            row.last_status = result.http_status
            now = utcnow()
            if result.ok:
                row.state = DeliveryState.DELIVERED.value
                row.delivered_at = now
                row.last_error = None
                return
            row.last_error = result.error
            give_up_at = row.retry_from + timedelta(seconds=self.policy.horizon)
            if result.final or now >= give_up_at:
                row.state = DeliveryState.GIVEN_UP.value
                row.given_up_at = now
                log.warning("%s delivery %s of task %s given up after %s attempt(s): %s", row.channel, row.id,
                            row.task_id, row.attempts, result.error)
                return
            delay = self.policy.next_delay(row.attempts)
            if result.retry_after is not None:
                delay = max(delay, result.retry_after)
            # the last try falls on the horizon itself, so a receiver back just before it still gets the event
            row.next_try = min(now + timedelta(seconds=delay), give_up_at)

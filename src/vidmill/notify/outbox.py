"""The outbox: neutral events written in the state change's own transaction, rendered and sent later.

What is stored is what happened (``event``, the task's neutral snapshot, the event's ``details``), never a
vendor's body: the deliverer asks the task's dialect to render a :class:`Outgoing` ("request to send":
channel, target, content type, body, headers) at send time, and hands it to the channel's sender. So a
process that never built the web app (the CLI, a worker) delivers every callback, and a new dialect adds a
renderer, not a table.

The vocabulary shared by the deliverer, the dialects' renderers and the channels' senders lives here:

- :class:`Notice`: one outbox row as a renderer sees it (the task snapshot restored as a ``TaskView``).
- :class:`Renderer`: ``render(notice) -> Outgoing | None`` (``None``: this dialect does not send that event).
- :class:`Outgoing`: what to send; channel-specific needs go in ``headers`` (an e-mail's ``Subject``).
- :class:`Sender`: ``send(outgoing, secret) -> SendResult`` for one channel (``http`` today).
- :class:`SendResult`: delivered or not, HTTP status or error, ``Retry-After``, and ``final`` (410 Gone,
  refused URL: retrying cannot help).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from vidmill.errors import Conflict, NotFound
from vidmill.store.models import DeliveryAttempt, Outbox, Task, utcnow

if TYPE_CHECKING:
    from vidmill.core.tasks import TaskView

HTTP = "http"  # a POST to the task's callback URL
EMAIL = "email"  # a message to an address (``Outgoing.headers["Subject"]``), sent over SMTP


class DeliveryState(str, Enum):
    PENDING = "pending"  # not sent yet, or retrying
    DELIVERED = "delivered"
    GIVEN_UP = "given_up"  # past the retry horizon, or the receiver said it is gone (410)
    SKIPPED = "skipped"  # the dialect sends nothing for this event


@dataclass(frozen=True)
class Notice:
    """One outbox row as a renderer sees it."""

    id: int
    event: str
    channel: str
    target: str
    task: "TaskView"
    details: dict
    attempt: int  # 1-based number of the try about to be made
    created_at: datetime


@dataclass(frozen=True)
class Outgoing:
    """A rendered request to send, free of any vendor's vocabulary."""

    channel: str
    target: str
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait
    final: bool = False  # retrying cannot help


class Renderer(Protocol):
    def render(self, notice: Notice) -> Outgoing | None: ...


class Sender(Protocol):
    def send(self, outgoing: Outgoing, *, secret: str) -> SendResult: ...


def targets(task: Task) -> list[tuple[str, str]]:
    """Where a task's events go: (channel, target) pairs: its callback URL and any more a dialect recorded as
    ``dialect_data["notify_urls"]``, and the e-mail addresses recorded as ``dialect_data["notify_emails"]``
    (TransparentEdge's notifications: a list, each with a callback URL and an e-mail)."""
    data = task.dialect_data or {}
    urls = dict.fromkeys(u for u in [task.callback_url, *(data.get("notify_urls") or [])] if u)
    return [(HTTP, url) for url in urls] + [(EMAIL, address) for address in data.get("notify_emails") or []]


def enqueue(session: Session, task: Task, event: str, **details) -> None:
    """Record ``event`` for every target of ``task``, in the caller's transaction.

    ``details`` are the event's own neutral facts (``error_code``, ``error_message``)."""
    pairs = targets(task)
    if not pairs:
        return
    from vidmill.core.tasks import snapshot, task_view  # core.tasks writes through this module

    snap = snapshot(task_view(session, task, deliveries=False))
    now = utcnow()
    for channel, target in pairs:
        session.add(Outbox(task_id=task.id, event=event, channel=channel, target=target, dialect=task.dialect,
                           details={k: v for k, v in details.items() if v is not None}, snapshot=snap,
                           state=DeliveryState.PENDING.value, created_at=now, next_try=now, retry_from=now))


# -- the delivery log ------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(row: Outbox, attempts: list[DeliveryAttempt] | None = None, *, retry_horizon: float) -> dict:
    """A row of the delivery log as plain data (the CLI prints it, the API returns it)."""
    out = {
        "id": row.id,
        "event": row.event,
        "channel": row.channel,
        "target": row.target,
        "state": row.state,
        "attempts": row.attempts,
        "created_at": _iso(row.created_at),
        "next_try": _iso(row.next_try) if row.state == DeliveryState.PENDING.value else None,
        "retry_until": _iso(row.retry_from + timedelta(seconds=retry_horizon)),
        "delivered_at": _iso(row.delivered_at),
        "given_up_at": _iso(row.given_up_at),
        "last_status": row.last_status,
        "last_error": row.last_error,
    }
    if attempts is not None:
        out["log"] = [{"at": _iso(a.at), "duration_ms": round(a.duration_ms, 1), "http_status": a.http_status,
                       "error": a.error} for a in attempts]
    return out


def deliveries(session: Session, task_id: int, *, retry_horizon: float) -> list[dict]:
    """Every outbox row of a task, oldest first, each with its attempts."""
    rows = session.scalars(select(Outbox).where(Outbox.task_id == task_id).order_by(Outbox.id)).all()
    logs: dict[int, list[DeliveryAttempt]] = {r.id: [] for r in rows}
    if rows:
        for a in session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id.in_(list(logs)))
                                 .order_by(DeliveryAttempt.id)):
            logs[a.outbox_id].append(a)
    return [describe(r, logs[r.id], retry_horizon=retry_horizon) for r in rows]


def redeliver(session: Session, task_id: int, delivery_id: int) -> Outbox:
    """Send one row again now (delivered or given up: the receiver asked for it again; pending: sooner),
    with a fresh retry horizon. It keeps its place in its task's order."""
    row = session.scalars(select(Outbox).where(Outbox.id == delivery_id, Outbox.task_id == task_id)
                          .with_for_update()).first()
    if row is None:
        raise NotFound(f"delivery {delivery_id} not found for this task")
    if row.state == DeliveryState.SKIPPED.value:
        raise Conflict(f"delivery {delivery_id} is an event this task's dialect does not send")
    now = utcnow()
    row.state = DeliveryState.PENDING.value
    row.next_try = now
    row.retry_from = now
    row.given_up_at = None
    return row

"""Tasks: create (token only), start (query → one job per format entry), view."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import select

from vidmill.core.projects import ProjectRef
from vidmill.core.query import Query
from vidmill.errors import Conflict, NotFound
from vidmill.notify import outbox
from vidmill.store.db import Database
from vidmill.store.models import Event, Job, Outbox, Profile, Task, utcnow


@dataclass
class JobView:
    id: int
    index: int
    kind: str
    spec: dict
    status: str
    percent: float
    result: dict | None
    error_description: str | None


@dataclass
class DeliveryView:
    """Where one event of the task stands in the outbox (what a dialect turns into a status warning)."""

    id: int
    event: str
    channel: str
    target: str
    state: str  # pending, delivered, given_up, skipped
    attempts: int
    last_status: int | None
    last_error: str | None
    next_try: datetime | None
    delivered_at: datetime | None
    given_up_at: datetime | None


@dataclass
class TaskView:
    id: int
    token: str
    project_id: int
    dialect: str
    status: str
    percent: float
    error: int
    error_description: str | None
    warnings: list
    payload: str | None
    source_size: int | None
    duration: float | None
    query: dict | None
    jobs: list[JobView] = field(default_factory=list)
    deliveries: list[DeliveryView] = field(default_factory=list)
    external_id: str | None = None
    dialect_data: dict | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    priority: int = 0


def task_view(session, task: Task, *, deliveries: bool = True) -> TaskView:
    jobs = session.scalars(select(Job).where(Job.task_id == task.id).order_by(Job.index)).all()
    rows = (session.scalars(select(Outbox).where(Outbox.task_id == task.id).order_by(Outbox.id)).all()
            if deliveries else [])
    return TaskView(
        task.id, task.token, task.project_id, task.dialect, task.status, task.percent, task.error,
        task.error_description, list(task.warnings or []), task.payload, task.source_size, task.duration,
        task.query,
        [JobView(j.id, j.index, j.kind, dict(j.spec), j.status, j.percent, j.result, j.error_description)
         for j in jobs],
        [DeliveryView(r.id, r.event, r.channel, r.target, r.state, r.attempts, r.last_status, r.last_error,
                      r.next_try, r.delivered_at, r.given_up_at) for r in rows],
        task.external_id, dict(task.dialect_data) if task.dialect_data is not None else None,
        task.created_at, task.finished_at, task.priority or 0,
    )


def snapshot(view: TaskView) -> dict:
    """The task as plain JSON data (what the outbox stores with an event); ``restore`` reads it back."""
    data = asdict(view)
    data.pop("deliveries", None)
    for key in _TIMES:
        if data.get(key) is not None:
            data[key] = data[key].isoformat()
    return data


def restore(data: dict) -> TaskView:
    fields = dict(data)
    jobs = [JobView(**j) for j in fields.pop("jobs", [])]
    fields.pop("deliveries", None)
    for key in _TIMES:
        if fields.get(key) is not None:
            fields[key] = datetime.fromisoformat(fields[key])
    return TaskView(**fields, jobs=jobs)


_TIMES = ("created_at", "finished_at")  # TaskView's datetimes: ISO strings in a snapshot (a JSON column)


class Tasks:
    def __init__(self, db: Database):
        self.db = db

    def create(self, project: ProjectRef, dialect: str = "qencode") -> str:
        token = secrets.token_hex(16)
        with self.db.tx() as s:
            s.add(Task(token=token, project_id=project.id, dialect=dialect, status="created", warnings=[]))
        return token

    def start(self, token: str, query: Query, *, payload: str | None = None,
              project_id: int | None = None) -> TaskView:
        """Persist the query and one queued job per format entry; the ``queued`` callback goes in
        the same transaction. A token starts at most one encode."""
        with self.db.tx() as s:
            q = select(Task).where(Task.token == token)
            if not self.db.is_sqlite:
                q = q.with_for_update()
            task = s.scalars(q).first()
            if task is None or (project_id is not None and task.project_id != project_id):
                raise NotFound("task token not found")
            if task.status != "created":
                raise Conflict("this task token has already started an encode; create a new task")
            return self._queue(s, task, query, payload)

    def submit(self, project: ProjectRef, query: Query, *, dialect: str, external_id: str | None = None,
               dialect_data: dict | None = None, payload: str | None = None, priority: int = 0) -> TaskView:
        """Create and start a task in one transaction (dialects with no separate create step). Jobs of a
        task with a higher ``priority`` are claimed first (0: the default of every dialect)."""
        with self.db.tx() as s:
            task = Task(token=secrets.token_hex(16), project_id=project.id, dialect=dialect, status="created",
                        warnings=[], external_id=external_id, dialect_data=dialect_data, priority=priority)
            s.add(task)
            s.flush()
            return self._queue(s, task, query, payload)

    def _queue(self, s, task: Task, query: Query, payload: str | None) -> TaskView:
        task.query = query.model_dump(mode="json", exclude_unset=True)
        task.payload = payload
        task.callback_url = query.callback_url
        task.status = "queued"
        task.started_at = utcnow()
        for i, fmt in enumerate(query.format):
            spec = fmt.model_dump(mode="json", exclude_unset=True)
            s.add(Job(task_id=task.id, index=i, kind=fmt.output, spec=spec, status="queued",
                      soft_fail=bool(getattr(fmt, "allow_soft_fail", False))))
        s.add(Event(task_id=task.id, status="queued", message=f"{len(query.format)} output(s)"))
        s.flush()
        outbox.enqueue(s, task, "queued")
        return task_view(s, task)

    def find(self, project: ProjectRef, dialect: str, ident: str, *, by: str = "token") -> TaskView:
        """One task of ``project`` made through ``dialect``, by token or ``external_id``; another project's
        task is not found, exactly like a task that does not exist."""
        column = Task.token if by == "token" else Task.external_id
        with self.db.tx(readonly=True) as s:
            task = s.scalars(select(Task).where(column == ident, Task.project_id == project.id,
                                                Task.dialect == dialect)).first()
            if task is None:
                raise NotFound("task not found")
            return task_view(s, task)

    def external_id_taken(self, dialect: str, external_id: str) -> bool:
        with self.db.tx(readonly=True) as s:
            return s.scalars(select(Task.id).where(Task.dialect == dialect, Task.external_id == external_id)
                             ).first() is not None

    def list_for(self, project: ProjectRef, dialect: str, limit: int = 1000) -> list[TaskView]:
        """The project's tasks made through ``dialect``, newest first."""
        with self.db.tx(readonly=True) as s:
            rows = s.scalars(select(Task).where(Task.project_id == project.id, Task.dialect == dialect)
                             .order_by(Task.id.desc()).limit(limit)).all()
            return [task_view(s, t) for t in rows]

    def get(self, token: str) -> TaskView:
        with self.db.tx(readonly=True) as s:
            task = s.scalars(select(Task).where(Task.token == token)).first()
            if task is None:
                raise NotFound("task token not found")
            return task_view(s, task)

    def get_many(self, tokens: list[str], *, dialect: str | None = None) -> dict[str, TaskView]:
        """Tasks by token; with ``dialect``, only those made through it (others are as unknown as no task)."""
        with self.db.tx(readonly=True) as s:
            q = select(Task).where(Task.token.in_(tokens))
            if dialect is not None:
                q = q.where(Task.dialect == dialect)
            rows = s.scalars(q).all()
            return {t.token: task_view(s, t) for t in rows}

    def _owned(self, s, token: str, project_id: int | None) -> Task:
        task = s.scalars(select(Task).where(Task.token == token)).first()
        if task is None or (project_id is not None and task.project_id != project_id):
            raise NotFound("task token not found")
        return task

    def deliveries(self, token: str, *, retry_horizon: float, project_id: int | None = None) -> list[dict]:
        """The task's delivery log: every outbox row with its attempts (``project_id``: only if it owns the task)."""
        with self.db.tx(readonly=True) as s:
            return outbox.deliveries(s, self._owned(s, token, project_id).id, retry_horizon=retry_horizon)

    def redeliver(self, token: str, delivery_id: int, *, project_id: int | None = None) -> int:
        """Queue one delivery of the task to be sent again now; returns the task's id."""
        with self.db.tx() as s:
            task = self._owned(s, token, project_id)
            outbox.redeliver(s, task.id, delivery_id)
            return task.id

    def profile_formats(self, project: ProjectRef, uids: list[str]) -> list[dict]:
        """The ``format`` entries of stored profiles, in the order asked."""
        with self.db.tx() as s:
            out: list[dict] = []
            for uid in uids:
                p = s.scalars(select(Profile).where(Profile.uid == uid, Profile.project_id == project.id)).first()
                if p is None:
                    raise NotFound(f"profile {uid} not found")
                out.extend(p.formats)
            return out

    def add_profile(self, project: ProjectRef, name: str, formats: list[dict]) -> str:
        uid = secrets.token_hex(8)
        with self.db.tx() as s:
            s.add(Profile(project_id=project.id, uid=uid, name=name, formats=formats))
        return uid

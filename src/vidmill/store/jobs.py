"""Claiming jobs with a lease, renewing it, and moving jobs (and so their task) between states.

Every transition is one transaction that also recomputes the task's status and percent and
writes the callbacks the change causes into the outbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable
from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from vidmill.core.states import ACTIVE_JOB, JobStatus, TaskStatus, aggregate, check_transition
from vidmill.notify import outbox
from vidmill.store.db import Database
from vidmill.store.models import Event, Job, Task, utcnow

log = logging.getLogger("vidmill.store")


@dataclass(frozen=True)
class Claimed:
    job_id: int
    task_id: int
    task_token: str
    index: int
    kind: str
    spec: dict
    query: dict
    attempt: int
    owner: str
    project_id: int | None = None


def failure_summary(failures: list[tuple[str, str]]) -> str:
    """A task's error_description from its failed outputs' (name, cause) pairs: a cause shared by every
    output is said once, plainly; otherwise each cause once, after the outputs it hit."""
    causes: dict[str, list[str]] = {}
    for name, cause in failures:
        causes.setdefault(cause, []).append(name)
    if len(causes) == 1:
        return next(iter(causes))
    return "; ".join(f"{', '.join(names)}: {cause}" for cause, names in causes.items()) or "task failed"


class LeaseLost(RuntimeError):
    """Another worker owns the job now (our lease lapsed)."""


class JobStore:
    def __init__(self, db: Database, *, lease_seconds: float = 30.0, max_attempts: int = 3,
                 on_outbox: Callable[[], None] | None = None):
        self.db = db
        # called after a commit that may have written callbacks (wakes the deliverer at once)
        self.on_outbox = on_outbox or (lambda: None)
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts

    # -- claiming ---------------------------------------------------------------------------
    def claim(self, owner: str, *, dead_owners: set[str] | None = None) -> Claimed | None:
        """Take a claimable job: queued, or active with a lapsed lease (its worker died), or active under an
        owner known dead; of those, one of the highest-priority task, the oldest first. Returns None when
        there is nothing to do."""
        now = utcnow()
        active = [s.value for s in ACTIVE_JOB]
        lapsed = and_(Job.status.in_(active), or_(Job.lease_until.is_(None), Job.lease_until < now))
        cond = or_(Job.status == JobStatus.QUEUED.value, lapsed)
        if dead_owners:
            cond = or_(cond, and_(Job.status.in_(active), Job.lease_owner.in_(sorted(dead_owners))))
        with self.db.tx() as s:
            q = (select(Job).join(Task, Task.id == Job.task_id).where(cond)
                 .order_by(Task.priority.desc(), Job.id).limit(1))
            if not self.db.is_sqlite:
                q = q.with_for_update(skip_locked=True, of=Job)
            job = s.scalars(q).first()
            if job is None:
                return None
            task = self._lock_task(s, job.task_id)
            recovered = job.status != JobStatus.QUEUED.value
            job.attempt += 1
            if job.attempt > self.max_attempts:
                self._finish(s, task, job, JobStatus.ERROR,
                             error=f"job abandoned after {self.max_attempts} attempts (worker lost each time)")
                return None
            job.status = JobStatus.DOWNLOADING.value
            job.percent = 0.0
            job.lease_owner = owner
            job.lease_until = now + self.lease
            s.add(Event(task_id=task.id, job_id=job.id, status=job.status,
                        message=f"claimed by {owner}" + (" after a lost lease" if recovered else "")))
            self._refresh_task(s, task)
            return Claimed(job.id, task.id, task.token, job.index, job.kind, dict(job.spec),
                           dict(task.query or {}), job.attempt, owner, task.project_id)

    def heartbeat(self, job_id: int, owner: str) -> None:
        with self.db.tx() as s:
            res = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == owner, Job.status.in_([a.value for a in ACTIVE_JOB]))
                .values(lease_until=utcnow() + self.lease)
            )
            if res.rowcount == 0:
                raise LeaseLost(f"job {job_id} is no longer ours")

    # -- transitions -------------------------------------------------------------------------
    def set_status(self, job_id: int, owner: str, status: JobStatus, *, percent: float | None = None) -> None:
        with self.db.tx() as s:
            job, task = self._owned(s, job_id, owner)
            check_transition(JobStatus(job.status), status)
            job.status = status.value
            if percent is not None:
                job.percent = percent
            job.lease_until = utcnow() + self.lease
            s.add(Event(task_id=task.id, job_id=job.id, status=status.value))
            self._refresh_task(s, task)

    def progress(self, job_id: int, owner: str, percent: float) -> None:
        with self.db.tx() as s:
            job, task = self._owned(s, job_id, owner)
            job.percent = max(0.0, min(100.0, percent))
            job.lease_until = utcnow() + self.lease
            self._refresh_task(s, task)

    def update_task_facts(self, task_id: int, *, source_size: int | None = None, duration: float | None = None) -> None:
        with self.db.tx() as s:
            task = s.get(Task, task_id)
            if source_size is not None:
                task.source_size = source_size
            if duration is not None:
                task.duration = duration

    def add_warnings(self, task_id: int, warnings: list[dict]) -> None:
        if not warnings:
            return
        with self.db.tx() as s:
            task = self._lock_task(s, task_id)
            current = list(task.warnings or [])
            for w in warnings:
                if w not in current:
                    current.append(w)
            task.warnings = current

    def complete(self, job_id: int, owner: str, result: dict) -> None:
        with self.db.tx() as s:
            job, task = self._owned(s, job_id, owner)
            self._finish(s, task, job, JobStatus.COMPLETED, result=result)
        self.on_outbox()

    def skip(self, job_id: int, owner: str, reason: str) -> None:
        with self.db.tx() as s:
            job, task = self._owned(s, job_id, owner)
            self._finish(s, task, job, JobStatus.SKIPPED, error=reason)
        self.on_outbox()

    def fail(self, job_id: int, owner: str, description: str) -> None:
        with self.db.tx() as s:
            job, task = self._owned(s, job_id, owner)
            self._finish(s, task, job, JobStatus.ERROR, error=description)
        self.on_outbox()

    def release(self, job_id: int, owner: str) -> None:
        """Give a job back to the queue (graceful shutdown mid-run): it runs again, same attempt count."""
        with self.db.tx() as s:
            try:
                job, task = self._owned(s, job_id, owner)
            except LeaseLost:
                return
            job.status = JobStatus.QUEUED.value
            job.attempt = max(0, job.attempt - 1)
            job.lease_owner = None
            job.lease_until = None
            job.percent = 0.0
            s.add(Event(task_id=task.id, job_id=job.id, status="queued", message="released on shutdown"))
            self._refresh_task(s, task)

    def requeue(self, task_id: int) -> int:
        """Run a finished task's failed (or, if none failed, all its) jobs again from the start; the task
        goes back to queued and its error is cleared. Returns how many jobs were queued (0: still running)."""
        with self.db.tx() as s:
            task = self._lock_task(s, task_id)
            if not TaskStatus(task.status).terminal:
                return 0
            jobs = s.scalars(select(Job).where(Job.task_id == task.id).with_for_update()).all()
            again = [j for j in jobs if j.status == JobStatus.ERROR.value] or list(jobs)
            for j in again:
                j.status, j.percent, j.attempt = JobStatus.QUEUED.value, 0.0, 0
                j.lease_owner = j.lease_until = None
                j.result = j.error_description = None
            task.error, task.error_description, task.finished_at = 0, None, None
            s.add(Event(task_id=task.id, status="queued", message=f"requeued {len(again)} job(s)"))
            self._refresh_task(s, task)
            return len(again)

    def task_status(self, task_id: int) -> str:
        with self.db.tx(readonly=True) as s:
            return s.get(Task, task_id).status

    # -- internals ---------------------------------------------------------------------------
    # Lock order, everywhere: the job row, then its task row. Every change of a job's status holds its
    # task's row lock until commit, so _refresh_task (under that lock) always sees the other jobs'
    # committed states: two jobs finishing at once cannot both miss each other (PostgreSQL READ COMMITTED).
    # SQLite needs none of it (BEGIN IMMEDIATE serialises writers); with_for_update renders nothing there.
    def _owned(self, s, job_id: int, owner: str) -> tuple[Job, Task]:
        job = s.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
        if job is None or job.lease_owner != owner or JobStatus(job.status) not in ACTIVE_JOB:
            raise LeaseLost(f"job {job_id} is no longer ours")
        return job, self._lock_task(s, job.task_id)

    @staticmethod
    def _lock_task(s, task_id: int) -> Task:
        return s.scalars(select(Task).where(Task.id == task_id).with_for_update()).one()

    def _finish(self, s, task: Task, job: Job, status: JobStatus, *, result: dict | None = None,
                error: str | None = None) -> None:
        job.status = status.value
        job.percent = 100.0 if status is JobStatus.COMPLETED else job.percent
        job.lease_until = None
        job.lease_owner = None  # late calls from the finished run (a straggling progress write) now fail
        if result is not None:
            job.result = result
        if error is not None:
            job.error_description = error
        s.add(Event(task_id=task.id, job_id=job.id, status=status.value, message=error))
        self._refresh_task(s, task)

    def _refresh_task(self, s, task: Task) -> None:
        s.flush()
        jobs = s.scalars(select(Job).where(Job.task_id == task.id).order_by(Job.index)).all()
        shown = []
        for j in jobs:
            st = JobStatus(j.status)
            # a soft-failing output's error never fails its task
            shown.append(JobStatus.SKIPPED if (st is JobStatus.ERROR and j.soft_fail) else st)
        new = aggregate(shown)
        counted = [j for j in jobs if j.status != JobStatus.SKIPPED.value]
        percent = (sum(100.0 if JobStatus(j.status).terminal else j.percent for j in counted) / len(counted)
                   if counted else 100.0)
        old = task.status
        task.percent = 100.0 if new is TaskStatus.COMPLETED else round(percent, 2)
        if new.value == old:
            return
        task.status = new.value
        s.add(Event(task_id=task.id, status=new.value))
        if new.terminal:
            task.finished_at = utcnow()
            if new is TaskStatus.ERROR:
                failed = [j for j in jobs if j.status == JobStatus.ERROR.value and not j.soft_fail]
                task.error = 1
                task.error_description = failure_summary(
                    [(f"{j.kind} output #{j.index}", j.error_description or "failed") for j in failed])
                outbox.enqueue(s, task, "error", error_code=1, error_message=task.error_description)
            outbox.enqueue(s, task, "saved")


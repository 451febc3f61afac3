"""Task and job states, as explicit enums with their allowed transitions."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    ENCODING = "encoding"
    SAVING = "saving"
    COMPLETED = "completed"
    ERROR = "error"
    SKIPPED = "skipped"  # upscale rule: the output is not produced

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_JOB

    @property
    def active(self) -> bool:
        return self in ACTIVE_JOB


TERMINAL_JOB = frozenset({JobStatus.COMPLETED, JobStatus.ERROR, JobStatus.SKIPPED})
ACTIVE_JOB = frozenset({JobStatus.DOWNLOADING, JobStatus.ENCODING, JobStatus.SAVING})

JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.DOWNLOADING, JobStatus.ERROR}),
    JobStatus.DOWNLOADING: frozenset(
        {JobStatus.ENCODING, JobStatus.SAVING, JobStatus.SKIPPED, JobStatus.ERROR, JobStatus.QUEUED}
    ),
    JobStatus.ENCODING: frozenset({JobStatus.SAVING, JobStatus.ERROR, JobStatus.QUEUED}),
    JobStatus.SAVING: frozenset({JobStatus.COMPLETED, JobStatus.ERROR, JobStatus.QUEUED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.ERROR: frozenset(),
    JobStatus.SKIPPED: frozenset(),
}


class TaskStatus(str, Enum):
    CREATED = "created"  # create_task answered, no start yet
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    ENCODING = "encoding"
    SAVING = "saving"
    COMPLETED = "completed"
    ERROR = "error"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.ERROR)


class IllegalTransition(RuntimeError):
    """A job was asked to move to a state its current state does not lead to."""


def check_transition(old: JobStatus, new: JobStatus) -> None:
    if new not in JOB_TRANSITIONS[old]:
        raise IllegalTransition(f"job cannot go from {old.value} to {new.value}")


def aggregate(statuses: list[JobStatus]) -> TaskStatus:
    """The task status that a set of job statuses shows (Qencode vocabulary)."""
    if not statuses:
        return TaskStatus.QUEUED
    if all(s.terminal for s in statuses):
        return TaskStatus.ERROR if any(s is JobStatus.ERROR for s in statuses) else TaskStatus.COMPLETED
    for shown in (JobStatus.ENCODING, JobStatus.SAVING, JobStatus.DOWNLOADING):
        if shown in statuses:
            return TaskStatus(shown.value)
    # only queued and finished jobs: work is under way if anything finished
    return TaskStatus.ENCODING if any(s.terminal for s in statuses) else TaskStatus.QUEUED

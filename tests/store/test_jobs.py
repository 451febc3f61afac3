"""The job lifecycle on real SQLite and PostgreSQL: claims, leases, transitions, outbox rows."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from vidmill.core.projects import Projects
from vidmill.core.query import parse_query
from vidmill.core.states import JobStatus
from vidmill.core.tasks import Tasks
from vidmill.errors import Conflict, NotFound
from vidmill.store.jobs import JobStore, LeaseLost, failure_summary
from vidmill.store.models import Outbox


LEASE = 1.5  # long enough that a slow box never sees a fresh lease lapse between two calls


def _query(n_formats=1, callback=True):
    fmts = ", ".join('{"output": "mp4", "size": "320x240"}' for _ in range(n_formats))
    cb = ', "callback_url": "http://127.0.0.1:9/cb"' if callback else ""
    return parse_query('{"query": {"source": "https://example.com/a.mp4", "format": [%s]%s}}' % (fmts, cb))


@pytest.fixture
def env(db):
    projects = Projects(db)
    project, _ = projects.create("p")
    yield db, project, Tasks(db), JobStore(db, lease_seconds=LEASE, max_attempts=2)


def _events(db):
    with db.tx() as s:
        rows = s.scalars(select(Outbox).order_by(Outbox.id)).all()
        # neutral events: the task as it was at the event, and no vendor's body
        assert all(r.snapshot["token"] and r.snapshot["status"] and r.state == "pending" for r in rows)
        return [r.event for r in rows]


def test_start_creates_one_job_per_format_and_a_queued_callback(env):
    db, project, tasks, jobs = env
    token = tasks.create(project)
    view = tasks.start(token, _query(3), payload="p1")
    assert [j.status for j in view.jobs] == ["queued"] * 3
    assert view.status == "queued" and view.payload == "p1"
    assert _events(db) == ["queued"]


def test_a_task_token_starts_once(env):
    _, project, tasks, _ = env
    token = tasks.create(project)
    tasks.start(token, _query())
    with pytest.raises(Conflict):
        tasks.start(token, _query())
    with pytest.raises(NotFound):
        tasks.start("0" * 32, _query())


def test_claim_progress_complete_drives_task_status(env):
    db, project, tasks, jobs = env
    token = tasks.create(project)
    tasks.start(token, _query(2))
    a = jobs.claim("w1")
    b = jobs.claim("w2")
    assert {a.index, b.index} == {0, 1}
    assert jobs.claim("w3") is None
    assert tasks.get(token).status == "downloading"
    jobs.set_status(a.job_id, "w1", JobStatus.ENCODING)
    jobs.progress(a.job_id, "w1", 50.0)
    view = tasks.get(token)
    assert view.status == "encoding" and view.percent == pytest.approx(25.0)
    jobs.set_status(a.job_id, "w1", JobStatus.SAVING)
    jobs.complete(a.job_id, "w1", {"files": []})
    assert tasks.get(token).status != "completed"
    jobs.set_status(b.job_id, "w2", JobStatus.ENCODING)
    jobs.set_status(b.job_id, "w2", JobStatus.SAVING)
    jobs.complete(b.job_id, "w2", {"files": []})
    view = tasks.get(token)
    assert view.status == "completed" and view.percent == 100.0 and view.error == 0
    assert _events(db) == ["queued", "saved"]


def test_failure_makes_task_error_with_description_and_error_callback(env):
    db, project, tasks, jobs = env
    token = tasks.create(project)
    tasks.start(token, _query())
    c = jobs.claim("w")
    jobs.fail(c.job_id, "w", "FFmpeg failed: boom")
    view = tasks.get(token)
    assert view.status == "error" and view.error == 1
    assert "boom" in view.error_description
    assert _events(db) == ["queued", "error", "saved"]


@pytest.mark.parametrize(
    "failures, expected",
    [
        pytest.param([("mp4 output #0", "source is not readable media: Invalid data")],
                     "source is not readable media: Invalid data", id="one"),
        pytest.param([("mp4 output #0", "HTTP 404"), ("webm output #1", "HTTP 404"), ("mp4 output #2", "HTTP 404")],
                     "HTTP 404", id="shared-cause-said-once"),
        pytest.param([("mp4 output #0", "A"), ("webm output #1", "B"), ("mp4 output #2", "A")],
                     "mp4 output #0, mp4 output #2: A; webm output #1: B", id="grouped"),
        pytest.param([], "task failed", id="none"),
    ],
)
def test_failure_summary(failures, expected):
    assert failure_summary(failures) == expected


def test_every_output_failing_for_one_cause_says_it_once(env):
    db, project, tasks, jobs = env
    token = tasks.create(project)
    tasks.start(token, _query(3))
    for _ in range(3):
        c = jobs.claim("w")
        jobs.fail(c.job_id, "w", "source download failed: HTTP 404 Not Found")
    assert tasks.get(token).error_description == "source download failed: HTTP 404 Not Found"


def test_lapsed_lease_is_reclaimed_and_old_owner_is_locked_out(env):
    _, project, tasks, jobs = env
    token = tasks.create(project)
    tasks.start(token, _query())
    c = jobs.claim("dead")
    assert jobs.claim("alive") is None
    time.sleep(LEASE + 0.4)
    again = jobs.claim("alive")
    assert again is not None and again.job_id == c.job_id and again.attempt == 2
    with pytest.raises(LeaseLost):
        jobs.heartbeat(c.job_id, "dead")
    with pytest.raises(LeaseLost):
        jobs.complete(c.job_id, "dead", {})
    jobs.heartbeat(again.job_id, "alive")


def test_attempts_are_bounded(env):
    _, project, tasks, jobs = env
    token = tasks.create(project)
    tasks.start(token, _query())
    jobs.claim("a")
    time.sleep(LEASE + 0.4)
    jobs.claim("b")
    time.sleep(LEASE + 0.4)
    assert jobs.claim("c") is None  # third attempt over max_attempts=2: the job errors
    view = tasks.get(token)
    assert view.status == "error" and "abandoned" in view.error_description


def test_dead_owner_jobs_are_claimed_without_waiting_for_the_lease(env):
    _, project, tasks, jobs = env
    jobs.lease = jobs.lease * 1000
    token = tasks.create(project)
    tasks.start(token, _query())
    c = jobs.claim("host:1:x:w0")
    assert jobs.claim("new") is None
    again = jobs.claim("new", dead_owners={"host:1:x:w0"})
    assert again.job_id == c.job_id


def test_concurrent_claims_never_hand_out_a_job_twice(env):
    _, project, tasks, jobs = env
    jobs.lease = jobs.lease * 1000
    for _ in range(4):
        tasks.start(tasks.create(project), _query(3, callback=False))
    got, errors = [], []

    def worker(n):
        try:
            while (c := jobs.claim(f"w{n}")) is not None:
                got.append(c.job_id)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(got) == sorted(set(got)) and len(got) == 12


def test_release_puts_a_job_back_without_spending_an_attempt(env):
    _, project, tasks, jobs = env
    token = tasks.create(project)
    tasks.start(token, _query())
    c = jobs.claim("w")
    jobs.release(c.job_id, "w")
    again = jobs.claim("w2")
    assert again.job_id == c.job_id and again.attempt == 1


def test_jobs_finishing_together_always_finish_their_task(env):
    """Two jobs of one task completing at the same instant: one of them must see the other (PostgreSQL's
    READ COMMITTED would let both miss each other without the task-row lock) and ``saved`` goes once."""
    db, project, tasks, jobs = env
    jobs.lease = jobs.lease * 1000
    tokens = []
    for _ in range(15):
        token = tasks.create(project)
        tasks.start(token, _query(2))
        a, b = jobs.claim("wa"), jobs.claim("wb")
        for c, owner in ((a, "wa"), (b, "wb")):
            jobs.set_status(c.job_id, owner, JobStatus.ENCODING)
            jobs.set_status(c.job_id, owner, JobStatus.SAVING)
        barrier = threading.Barrier(2)
        errors = []

        def finish(c, owner):
            try:
                barrier.wait()
                jobs.complete(c.job_id, owner, {"files": []})
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=finish, args=(a, "wa")), threading.Thread(target=finish, args=(b, "wb"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        tokens.append(token)
    assert [tasks.get(t).status for t in tokens] == ["completed"] * len(tokens)
    assert _events(db).count("saved") == len(tokens)


def test_a_finished_run_cannot_write_again(env):
    _, project, tasks, jobs = env
    token = tasks.create(project)
    tasks.start(token, _query())
    c = jobs.claim("w")
    jobs.set_status(c.job_id, "w", JobStatus.ENCODING)
    jobs.set_status(c.job_id, "w", JobStatus.SAVING)
    jobs.complete(c.job_id, "w", {"files": []})
    with pytest.raises(LeaseLost):
        jobs.progress(c.job_id, "w", 10.0)  # a straggling progress write after the end
    assert tasks.get(token).percent == 100.0


def test_a_source_over_4_gib_keeps_its_size(env):
    """source_size is a 64-bit column: 5 GiB (above both 2**31 and 2**32) is stored and read back exactly."""
    db, project, tasks, jobs = env
    token = tasks.create(project)
    view = tasks.start(token, _query())
    five_gib = 5 * 1024**3
    jobs.update_task_facts(view.id, source_size=five_gib)
    assert tasks.get(token).source_size == five_gib


def test_jobs_of_higher_priority_tasks_are_claimed_first_then_the_oldest(env):
    db, project, tasks, jobs = env
    low = tasks.submit(project, _query(2, callback=False), dialect="qencode")
    high = tasks.submit(project, _query(2, callback=False), dialect="qencode", priority=3)
    later_low = tasks.submit(project, _query(1, callback=False), dialect="qencode")
    assert (low.priority, high.priority) == (0, 3)
    order = []
    while (c := jobs.claim("w1")) is not None:
        order.append((c.task_id, c.index))
    assert order == [(high.id, 0), (high.id, 1), (low.id, 0), (low.id, 1), (later_low.id, 0)]

"""Requeue (TransparentEdge's "requeue an order") and submit/find/list of dialect tasks, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from vidmill.core.profiles import Profiles
from vidmill.core.projects import Projects
from vidmill.core.query import parse_query
from vidmill.core.tasks import Tasks
from vidmill.errors import NotFound
from vidmill.store.jobs import JobStore


def _query(n=2):
    fmts = ", ".join('{"output": "mp4", "size": "320x240"}' for _ in range(n))
    return parse_query('{"query": {"source": "https://example.com/a.mp4", "format": [%s]}}' % fmts)


@pytest.fixture
def env(db):
    projects = Projects(db)
    a, _ = projects.create("a")
    b, _ = projects.create("b")
    return Tasks(db), JobStore(db, lease_seconds=30, max_attempts=2), a, b


def _run(jobs: JobStore, ok: bool):
    claimed = jobs.claim("w1")
    if ok:
        jobs.complete(claimed.job_id, "w1", {"files": []})
    else:
        jobs.fail(claimed.job_id, "w1", "boom")


def test_requeue_runs_only_the_failed_jobs_again(env):
    tasks, jobs, a, _ = env
    view = tasks.submit(a, _query(2), dialect="transparent", external_id="1631092552-1237")
    assert jobs.requeue(view.id) == 0  # still queued: nothing to requeue
    _run(jobs, ok=True)
    _run(jobs, ok=False)
    done = tasks.find(a, "transparent", "1631092552-1237", by="external_id")
    assert done.status == "error" and done.error_description
    assert jobs.requeue(view.id) == 1
    again = tasks.find(a, "transparent", view.token)
    assert again.status in ("queued", "encoding") and again.error == 0 and again.error_description is None
    assert [(j.status, j.percent) for j in again.jobs] == [("completed", 100.0), ("queued", 0.0)]
    _run(jobs, ok=True)
    assert tasks.find(a, "transparent", view.token).status == "completed"
    # a finished order with no failure runs whole again
    assert jobs.requeue(view.id) == 2
    assert [j.status for j in tasks.find(a, "transparent", view.token).jobs] == ["queued", "queued"]


def test_find_and_list_are_scoped_by_project_and_dialect(env):
    tasks, _, a, b = env
    t1 = tasks.submit(a, _query(1), dialect="octet", dialect_data={"outputs": []})
    t2 = tasks.submit(a, _query(1), dialect="transparent", external_id="1631092552-0001")
    assert [v.token for v in tasks.list_for(a, "octet")] == [t1.token]
    assert [v.external_id for v in tasks.list_for(a, "transparent")] == ["1631092552-0001"]
    assert tasks.list_for(b, "octet") == [] and tasks.list_for(b, "transparent") == []
    for project, dialect, ident, by in ((b, "octet", t1.token, "token"), (a, "transparent", t1.token, "token"),
                                        (b, "transparent", "1631092552-0001", "external_id")):
        with pytest.raises(NotFound):
            tasks.find(project, dialect, ident, by=by)
    assert tasks.find(a, "octet", t1.token).dialect_data == {"outputs": []}
    assert tasks.external_id_taken("transparent", "1631092552-0001")
    assert not tasks.external_id_taken("octet", "1631092552-0001")
    assert t2.created_at is not None


def test_profiles_belong_to_one_project(env, db):
    _, _, a, b = env
    profiles = Profiles(db)
    p = profiles.create(a, "small", [{"output": "mp4", "size": "320x180"}])
    assert profiles.get(a, p.id).formats == [{"output": "mp4", "size": "320x180"}]
    with pytest.raises(NotFound):
        profiles.get(b, p.id)
    with pytest.raises(NotFound):
        profiles.update(b, p.id, name="stolen")
    with pytest.raises(NotFound):
        profiles.delete(b, p.id)
    assert profiles.update(a, p.id, name="renamed").name == "renamed"
    assert [x.id for x in profiles.list_for(a)] == [p.id] and profiles.list_for(b) == []
    profiles.delete(a, p.id)
    with pytest.raises(NotFound):
        profiles.get(a, p.id)

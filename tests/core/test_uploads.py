"""Upload records: limits and quota at creation (also under concurrency), expiry, and ``tus:`` sources."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from tests.services import fresh_pg_database
from vidmill import sources
from vidmill.config import Settings
from vidmill.core.projects import Projects
from vidmill.core.tasks import Tasks
from vidmill.core.uploads import Uploads, parse_uuid
from vidmill.errors import LimitExceeded, SourceError, UrlRefused
from vidmill.store.db import Database
from vidmill.store.models import utcnow


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path):
    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'v.db'}"
    else:
        url, drop = fresh_pg_database()
    settings = Settings(data_dir=tmp_path / "data", database_url=url, upload_max_bytes=1000,
                        upload_quota_bytes=2500, upload_ttl_seconds=3600)
    db = Database(url)
    db.migrate()
    uploads = Uploads(db, settings)
    yield settings, db, uploads
    db.dispose()
    if drop:
        drop()


def _task(db, uploads, name="p"):
    project, _ = Projects(db).create(name)
    return uploads.task(Tasks(db).create(project)), project


def _finish(uploads, ref, data: bytes):
    """What the protocol library leaves behind for a finished upload: the bytes and its .info sidecar."""
    path = uploads.path(ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.with_name(path.name + ".info").write_text(json.dumps({"offset": len(data), "size": ref.size}))


def test_size_limit_and_quota_are_checked_at_creation(env):
    settings, db, uploads = env
    task, project = _task(db, uploads)
    with pytest.raises(LimitExceeded, match="limit of 1000 bytes"):
        uploads.create(task, 1001)
    with pytest.raises(LimitExceeded, match="at least 1 byte"):
        uploads.create(task, 0)
    a, b = uploads.create(task, 1000), uploads.create(task, 1000)
    with pytest.raises(LimitExceeded, match=r"quota \(2000 of 2500 bytes in use\)"):
        uploads.create(task, 501)
    uploads.create(task, 500)  # exactly up to the quota
    uploads.mark_deleted(a.uuid)  # deleted uploads give their room back
    uploads.create(task, 1000)
    # a project's own limits override the server's defaults
    uploads.set_limits(project.name, max_bytes=5000, quota_bytes=10_000)
    assert uploads.limits(project.id) == (5000, 10_000)
    uploads.create(task, 5000)
    other, _ = _task(db, uploads, "q")
    uploads.create(other, 1000)  # quotas are per project
    assert b.uuid != a.uuid and len(a.uuid) == 32


def test_the_number_of_live_uploads_is_bounded(env):
    settings, db, uploads = env
    task, _ = _task(db, uploads)
    settings.upload_max_count = 3
    made = [uploads.create(task, 1) for _ in range(3)]
    with pytest.raises(LimitExceeded, match="3 live uploads"):
        uploads.create(task, 1)
    uploads.mark_deleted(made[0].uuid)
    uploads.create(task, 1)


def test_concurrent_creations_cannot_both_slip_under_the_quota(env):
    settings, db, uploads = env
    task, _ = _task(db, uploads)
    results: list = []
    barrier = threading.Barrier(6)

    def make():
        barrier.wait(timeout=10)
        try:
            results.append(uploads.create(task, 1000))
        except LimitExceeded as exc:
            results.append(exc)

    threads = [threading.Thread(target=make) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(not isinstance(r, Exception) for r in results) == 2  # 2 x 1000 fit in 2500
    assert sum(isinstance(r, LimitExceeded) for r in results) == 4


def test_sweep_deletes_expired_uploads_and_their_files(env):
    settings, db, uploads = env
    task, _ = _task(db, uploads)
    old, fresh = uploads.create(task, 3), uploads.create(task, 3)
    for ref in (old, fresh):
        _finish(uploads, ref, b"abc")
    lock = uploads.path(old).parent / ".locks" / f"{old.uuid}.lock"
    lock.parent.mkdir()
    lock.write_text("1")
    assert uploads.sweep(now=utcnow()) == 0
    later = old.expires_at + timedelta(seconds=1)
    assert uploads.sweep(now=later) == 2
    assert not uploads.path(old).exists() and not lock.exists()
    assert list(uploads.path(old).parent.glob("*")) == [lock.parent]
    assert uploads.get(old.uuid).deleted and uploads.sweep(now=later) == 0


def test_tus_source_links_a_finished_upload_of_its_own_project_only(env, tmp_path):
    settings, db, uploads = env
    task, project = _task(db, uploads)
    ref = uploads.create(task, 5)
    url = f"tus:{ref.uuid}"
    with pytest.raises(SourceError, match=r"incomplete \(0 of 5 bytes\)"):
        sources.fetch(url, tmp_path / "s", settings=settings, project_id=project.id)
    _finish(uploads, ref, b"hello")
    other_task, other = _task(db, uploads, "other")
    for project_id in (other.id, None):
        with pytest.raises(SourceError, match="no such upload in this project"):
            sources.fetch(url, tmp_path / "s", settings=settings, project_id=project_id)
    got = sources.fetch(url.upper().replace("TUS:", "tus:"), tmp_path / "job" / "source", settings=settings,
                        project_id=project.id)
    assert got.size == 5 and got.path.read_bytes() == b"hello"
    assert uploads.get(ref.uuid).complete  # reconciled from the library's record
    removed = uploads.create(task, 2)
    _finish(uploads, removed, b"hi")
    uploads.mark_deleted(removed.uuid)  # tus termination (DELETE) by the uploader
    with pytest.raises(SourceError, match="deleted by its uploader"):
        sources.fetch(f"tus:{removed.uuid}", tmp_path / "s", settings=settings, project_id=project.id)
    uploads.sweep(now=ref.expires_at)
    assert got.path.read_bytes() == b"hello"  # a running task keeps its source after the upload is deleted
    with pytest.raises(SourceError, match="expired"):
        sources.fetch(url, tmp_path / "s2", settings=settings, project_id=project.id)


@pytest.mark.parametrize("url", ["tus:", "tus:../../etc/passwd", "tus:abc", "tus:" + "g" * 32])
def test_tus_source_shapes_are_vetted(url):
    with pytest.raises(UrlRefused, match="not an upload id"):
        sources.vet(url, settings=None)


def test_parse_uuid_accepts_both_spellings():
    u = "2a7c0c5e1b6f4b7a9f0f1e2d3c4b5a69"
    assert parse_uuid(u) == parse_uuid("2a7c0c5e-1b6f-4b7a-9f0f-1e2d3c4b5a69") == u
    assert parse_uuid("../x") is None

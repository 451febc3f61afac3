"""Projects, API keys stored hashed, sessions that expire, tasks scoped to their project."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from vidmill.config import Settings
from vidmill.core.query import parse_query
from vidmill.errors import NotFound
from vidmill.runtime import Runtime
from vidmill.store.models import ApiKey


@pytest.fixture
def rt(tmp_path):
    runtime = Runtime(Settings(data_dir=tmp_path), start_workers=False)
    yield runtime
    runtime.db.dispose()


def test_keys_are_stored_hashed(rt):
    project, key = rt.projects.create("acme")
    with rt.db.tx() as s:
        stored = s.scalars(select(ApiKey).where(ApiKey.project_id == project.id)).one()
    assert stored.key_hash != key and key not in stored.key_hash and len(stored.key_hash) == 64
    assert rt.projects.by_key(key).name == "acme"
    with pytest.raises(NotFound):
        rt.projects.by_key(key + "x")


def test_sessions_expire(tmp_path):
    runtime = Runtime(Settings(data_dir=tmp_path, session_ttl_seconds=0), start_workers=False)
    project, _ = runtime.projects.create("p")
    token, _ = runtime.projects.new_session(project)
    with pytest.raises(NotFound, match="Token not found"):
        runtime.projects.by_session(token)
    runtime.db.dispose()


def test_session_maps_to_its_project(rt):
    a, _ = rt.projects.create("a")
    b, _ = rt.projects.create("b")
    ta, _ = rt.projects.new_session(a)
    tb, _ = rt.projects.new_session(b)
    assert rt.projects.by_session(ta).id == a.id and rt.projects.by_session(tb).id == b.id


def test_a_project_cannot_start_another_projects_task(rt):
    a, _ = rt.projects.create("a")
    b, _ = rt.projects.create("b")
    token = rt.tasks.create(a)
    query = parse_query('{"query": {"source": "https://example.com/x.mp4", "format": [{"output": "mp4"}]}}')
    with pytest.raises(NotFound):
        rt.tasks.start(token, query, project_id=b.id)
    assert rt.tasks.start(token, query, project_id=a.id).status == "queued"


def test_profiles_belong_to_their_project(rt):
    a, _ = rt.projects.create("a")
    b, _ = rt.projects.create("b")
    uid = rt.tasks.add_profile(a, "small", [{"output": "mp4", "size": "320x240"}])
    assert rt.tasks.profile_formats(a, [uid]) == [{"output": "mp4", "size": "320x240"}]
    with pytest.raises(NotFound):
        rt.tasks.profile_formats(b, [uid])


def test_default_project_key_generated_once(tmp_path):
    first = Runtime(Settings(data_dir=tmp_path), start_workers=False)
    _, generated = first.projects.ensure_default(None)
    assert generated and len(generated) == 32
    assert first.projects.by_key(generated).name == "default"
    _, again = first.projects.ensure_default(None)
    assert again is None  # printed once, on first start only
    _, configured = first.projects.ensure_default("configuredkey123")
    assert configured is None and first.projects.by_key("configuredkey123").name == "default"
    first.db.dispose()

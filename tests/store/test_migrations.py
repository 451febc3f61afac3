"""Alembic migrations on real SQLite and PostgreSQL: schema equals models.py, idempotent, race-safe."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, inspect, select, text

from tests.services import fresh_pg_database
from vidmill.store.db import Database
from vidmill.store.migrations import alembic_config, head
from vidmill.store.models import ApiKey, Base, Project


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path):
    """The URL of an empty database that nothing has migrated yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url, drop = fresh_pg_database()
        yield url
        drop()


def _diffs(database: Database) -> list:
    with database.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)


def _versions(database: Database) -> list[str]:
    with database.engine.connect() as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_schema_matches_models(db):
    """The migrated schema is exactly models.py: tables, columns, types, nullability, indexes, constraints.

    This fails when someone changes store/models.py without adding a migration. Add one with
    ``python -c 'from vidmill.store.migrations import new_revision; new_revision("what changed")'``
    and review the generated file (see docs/architecture.md)."""
    assert _diffs(db) == []


def test_version_row_is_at_head(db):
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1  # one chain, no branches
    assert _versions(db) == [head()]


def test_outbox_rows_from_0001_survive_the_move_to_neutral_events(fresh_url):
    """Callbacks pending, delivered or failed under 0001 (rendered form bodies) keep their meaning."""
    database = Database(fresh_url)
    try:
        command.upgrade(alembic_config(url=fresh_url), "0001")
        with database.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO projects (id, name, callback_secret, created_at) "
                                 "VALUES (1, 'p', 's', '2026-01-01 00:00:00')")
            conn.exec_driver_sql(
                "INSERT INTO tasks (id, token, project_id, dialect, status, percent, error, warnings, created_at, "
                "updated_at) VALUES (1, 't', 1, 'qencode', 'error', 100, 1, '[]', '2026-01-01 00:00:00', "
                "'2026-01-01 00:00:00')")
            for i, (event, body, delivered, failed) in enumerate([
                ("queued", '{"event": "queued"}', "'2026-01-01 00:00:01'", "NULL"),
                ("error", '{"event": "error", "error_code": "1", "error_message": "boom"}', "NULL", "NULL"),
                ("saved", '{"event": "saved"}', "NULL", "'2026-01-01 00:00:03'"),
            ], start=1):
                conn.exec_driver_sql(
                    "INSERT INTO outbox (id, task_id, event, target, body, attempts, next_try, delivered_at, "
                    f"failed_at) VALUES ({i}, 1, '{event}', 'http://h/cb', '{body}', 1, '2026-01-01 00:00:0{i}', "
                    f"{delivered}, {failed})")
        database.migrate()
        assert _diffs(database) == []
        with database.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT event, state, channel, dialect, details, snapshot FROM outbox "
                                        "ORDER BY id").all()
        got = [(e, st, ch, d, details if isinstance(details, dict) else json.loads(details), snap)
               for e, st, ch, d, details, snap in rows]
        assert got == [
            ("queued", "delivered", "http", "qencode", {}, None),
            ("error", "pending", "http", "qencode", {"error_code": 1, "error_message": "boom"}, None),
            ("saved", "given_up", "http", "qencode", {}, None),
        ]
    finally:
        database.dispose()


def test_tasks_from_0004_get_priority_0_and_room_for_sizes_over_2_gib(fresh_url):
    """0005: existing tasks keep their size and get priority 0; a 5 GiB source size then fits (a 32-bit
    column said "integer out of range" on PostgreSQL); the downgrade goes back to 0004's columns."""
    database = Database(fresh_url)
    config = alembic_config(url=fresh_url)
    try:
        command.upgrade(config, "0004_i8_dialects")
        with database.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO projects (id, name, callback_secret, created_at) "
                                 "VALUES (1, 'p', 's', '2026-01-01 00:00:00')")
            conn.exec_driver_sql(
                "INSERT INTO tasks (id, token, project_id, dialect, status, percent, error, warnings, source_size, "
                "created_at, updated_at) VALUES (1, 't', 1, 'qencode', 'completed', 100, 0, '[]', 7826953, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')")
        command.upgrade(config, "0005_priority_bigsizes")
        assert _diffs(database) == []
        with database.engine.begin() as conn:
            assert conn.exec_driver_sql("SELECT priority, source_size FROM tasks").one() == (0, 7826953)
            conn.exec_driver_sql(f"UPDATE tasks SET source_size = {5 * 1024**3}")
            assert conn.exec_driver_sql("SELECT source_size FROM tasks").scalar() == 5 * 1024**3
            conn.exec_driver_sql("UPDATE tasks SET source_size = 7826953")
        command.downgrade(config, "0004_i8_dialects")
        columns = {c["name"]: c for c in inspect(database.engine).get_columns("tasks")}
        assert "priority" not in columns and "BIGINT" not in str(columns["source_size"]["type"]).upper()
    finally:
        database.dispose()


def test_migrate_twice_is_a_no_op(db):
    with db.tx() as s:
        s.add(Project(name="kept", callback_secret="s"))
    db.migrate()
    assert _versions(db) == [head()]
    assert _diffs(db) == []
    with db.tx() as s:
        assert s.scalars(select(Project.name)).all() == ["kept"]


def test_concurrent_migrate_from_threads(fresh_url):
    databases = [Database(fresh_url) for _ in range(4)]
    barrier = threading.Barrier(len(databases))
    errors: list[BaseException] = []

    def run(database: Database) -> None:
        try:
            barrier.wait(timeout=10)
            database.migrate()
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert _versions(databases[0]) == [head()]
        assert _diffs(databases[0]) == []
    finally:
        for d in databases:
            d.dispose()


def test_concurrent_migrate_from_processes(fresh_url):
    """Like the server and a ``vidmill projects`` CLI starting together on a fresh database."""
    start_at = time.time() + 3  # after every interpreter has finished importing
    script = (
        "import sys, time; from vidmill.store.db import Database; d = Database(sys.argv[1]); "
        "time.sleep(max(0, float(sys.argv[2]) - time.time())); d.migrate(); d.dispose()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, fresh_url, str(start_at)], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    assert results == [(0, "")] * 3
    database = Database(fresh_url)
    try:
        assert _versions(database) == [head()]
        assert _diffs(database) == []
    finally:
        database.dispose()


def test_adopts_a_database_made_by_create_all(fresh_url):
    """Data dirs from before migrations existed are stamped at 0001, not re-created."""
    database = Database(fresh_url)
    try:
        # what create_all made back then: the 0001 schema without a version table
        command.upgrade(alembic_config(url=fresh_url), "0001")
        with database.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE alembic_version")
            conn.exec_driver_sql("INSERT INTO projects (name, callback_secret, created_at) "
                                 "VALUES ('old', 's', '2026-01-01 00:00:00')")
        database.migrate()
        assert _versions(database) == [head()]
        assert _diffs(database) == []
        with database.tx() as s:
            assert s.scalars(select(Project.name)).all() == ["old"]
    finally:
        database.dispose()


def test_url_entry_point_migrates(fresh_url):
    """env.py's path without a handed-in connection, the one ``new_revision`` uses."""
    command.upgrade(alembic_config(url=fresh_url), "head")
    database = Database(fresh_url)
    try:
        assert _versions(database) == [head()]
        command.check(alembic_config(url=fresh_url))  # raises if models.py and migrations differ
    finally:
        database.dispose()


def test_failed_migration_leaves_nothing_behind(db):
    """Version check, DDL and version row are one transaction, also on SQLite's BEGIN IMMEDIATE."""
    with pytest.raises(RuntimeError, match="boom"):
        with db.migration_connection() as conn:
            conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'bogus'")
            raise RuntimeError("boom")
    assert "half_done" not in inspect(db.engine).get_table_names()
    assert _versions(db) == [head()]


def test_sqlite_batch_rebuild_of_a_parent_table_keeps_its_children(tmp_path):
    """Batch mode drops and re-creates a table; with foreign keys on, dropping ``projects`` under its
    api_keys would fail, so migrations run with them off and check them before committing."""
    database = Database(f"sqlite:///{tmp_path / 'v.db'}")
    try:
        database.migrate()
        with database.tx() as s:
            project = Project(name="p", callback_secret="s")
            s.add(project)
            s.flush()
            s.add(ApiKey(project_id=project.id, key_hash="h" * 64, prefix="vm_"))
        with database.migration_connection() as conn:
            ops = Operations(MigrationContext.configure(conn))
            with ops.batch_alter_table("projects", recreate="always") as batch:
                batch.add_column(Column("extra", Integer, nullable=True))
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("SELECT count(*) FROM api_keys").scalar() == 1
            assert "extra" in {c["name"] for c in inspect(conn).get_columns("projects")}
    finally:
        database.dispose()

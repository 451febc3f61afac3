"""Engine, session factory and migrations. SQLite (default) runs every transaction as BEGIN IMMEDIATE."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from alembic import command
from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from vidmill.store.migrations import alembic_config

# Key of the PostgreSQL advisory lock that serialises migrations (any constant no other code uses).
MIGRATE_LOCK_KEY = 0x76696D6D  # "vimm"
# alembic's ``context`` and ``op`` are module-global proxies: one migration per process at a time.
_in_process = threading.Lock()
READONLY = "vidmill_readonly"


class Database:
    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}, pool_pre_ping=True
            )
            _sqlite_immediate(self.engine)
        else:
            url = url.replace("postgres://", "postgresql://", 1)
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Upgrade this database to the newest migration (a no-op when it is there already).

        Safe when several processes start together on one database: see ``migration_connection``."""
        with _in_process, self.migration_connection() as conn:
            cfg = alembic_config(connection=conn)
            tables = set(inspect(conn).get_table_names())
            if "projects" in tables and "alembic_version" not in tables:
                # Made by create_all before migrations existed; models.py had not changed since, so
                # that schema is exactly revision 0001.
                command.stamp(cfg, "0001")
            command.upgrade(cfg, "head")

    @contextmanager
    def migration_connection(self) -> Iterator[Connection]:
        """A connection inside one transaction that no other migrator can enter until it commits.

        The version check and every migration run in that transaction, so a second process waits, then
        finds the database at head. PostgreSQL: transactional DDL plus ``pg_advisory_xact_lock``.
        SQLite: the BEGIN IMMEDIATE write lock, with foreign keys off meanwhile, because batch mode
        rebuilds a table by dropping it, and a dropped parent would fail or cascade to its children
        (SQLite's documented ALTER procedure); ``foreign_key_check`` runs before the commit instead."""
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.execute(select(func.pg_advisory_xact_lock(MIGRATE_LOCK_KEY)))
                    yield conn
                return
            # The PRAGMA is a no-op inside a transaction: send it on the raw connection, before BEGIN.
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    yield conn
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")
            finally:
                raw.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def tx(self, *, readonly: bool = False) -> Iterator[Session]:
        """One transaction: commit on success, roll back on error. ``readonly`` ones (status polls)
        take no write lock on SQLite, so they never queue behind a writer, nor it behind them."""
        with self.sessions() as session, session.begin():
            if readonly:
                session.connection(execution_options={READONLY: True})
            yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_immediate(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN; take the write lock up front instead,
    # so a claim's SELECT and UPDATE can never interleave with another writer.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        _wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READONLY) else "BEGIN IMMEDIATE")


def _wal(cur: sqlite3.Cursor) -> None:
    # Turning a new file to WAL needs an exclusive lock, and SQLite answers "database is locked" at once
    # there rather than waiting busy_timeout: seen when two processes open (and migrate) a new file together.
    deadline = time.monotonic() + 30
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)

"""Alembic environment: migrates the connection handed in by ``alembic_config``, or else its URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from vidmill.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kw) -> None:  # noqa: ANN003
    context.configure(
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead. Harmless elsewhere.
        render_as_batch=True,
        compare_type=True,
        **kw,
    )


def _online(connection: Connection) -> None:
    _configure(connection=connection)
    # Database.migration_connection has begun the transaction already: this joins it, and the
    # caller commits (after its checks), so the version check and the DDL are one unit.
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _online(connection)
        return
    from vidmill.store.db import Database  # the app's engine setup (BEGIN IMMEDIATE, pragmas)

    database = Database(config.get_main_option("sqlalchemy.url"))
    try:
        with database.migration_connection() as conn:
            _online(conn)
    finally:
        database.dispose()


main()

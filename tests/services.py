"""Real local services for tests: PostgreSQL (started if it is down), fresh databases."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from pathlib import Path

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def ensure_postgres() -> None:
    if port_open(5432):
        return
    versions = sorted(Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    if not versions:
        raise RuntimeError("PostgreSQL is not running and not installed here")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "start"], check=True)
    for _ in range(50):
        if port_open(5432):
            return
        time.sleep(0.2)
    raise RuntimeError("PostgreSQL did not come up on 127.0.0.1:5432")


def fresh_pg_database() -> tuple[str, callable]:
    """A new empty database; returns its URL and a function that drops it."""
    from sqlalchemy import create_engine, text

    ensure_postgres()
    name = f"vidmill_test_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", drop

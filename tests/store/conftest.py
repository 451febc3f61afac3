from __future__ import annotations

import pytest

from tests.services import fresh_pg_database
from vidmill.store.db import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'v.db'}")
        drop = None
    else:
        url, drop = fresh_pg_database()
        database = Database(url)
    database.migrate()
    yield database
    database.dispose()
    if drop:
        drop()

"""Alembic migrations of the vidmill schema, driven from code (there is no alembic.ini).

``Database.migrate()`` upgrades a live database to head. To add a revision after changing
``store/models.py``::

    .venv/bin/python -c 'from vidmill.store.migrations import new_revision; new_revision("add foo")'

then read the generated ``versions/NNNN_add_foo.py`` and fix what autogenerate cannot know.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

HERE = Path(__file__).parent


def alembic_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """A Config for this script directory; env.py migrates ``connection`` if given, else ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    # Revision files are named by their sequential id: versions/0002_add_foo.py.
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision id in versions/."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def new_revision(message: str, url: str | None = None) -> Path:
    """Autogenerate the next revision: upgrade a scratch SQLite file (or ``url``) to head, diff it
    against ``models.Base.metadata`` and write ``versions/NNNN_<message>.py``. Review it before committing."""
    script = ScriptDirectory.from_config(alembic_config())
    current = script.get_current_head()
    # ids are NNNN or NNNN_<branch>_<what> (several branches add revisions): number by the leading digits
    rev_id = f"{int(current.split('_', 1)[0]) + 1:04d}" if current else "0001"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = alembic_config(url=url or f"sqlite:///{Path(tmp) / 'scratch.db'}")
        command.upgrade(cfg, "head")
        written = command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
    return Path(written.path)

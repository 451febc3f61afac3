"""Wires one vidmill instance together: settings → store → services → executor → deliverer."""

from __future__ import annotations

import logging

from vidmill.config import Settings
from vidmill.core.profiles import Profiles
from vidmill.core.projects import Projects
from vidmill.core.tasks import Tasks
from vidmill.core.uploads import Janitor, Uploads
from vidmill.executors.local import LocalExecutor
from vidmill.notify.deliverer import Deliverer
from vidmill.notify.outbox import EMAIL, HTTP, Renderer, Sender
from vidmill.pipeline import JobContext
from vidmill.store.db import Database
from vidmill.store.jobs import JobStore

log = logging.getLogger("vidmill")


def notice_renderers(settings: Settings) -> dict[str, Renderer]:
    """Each dialect's outbox renderer, by the dialect name its tasks carry (``Task.dialect``)."""
    from vidmill.api.octet_render import OctetNotices
    from vidmill.api.qencode_render import QencodeNotices
    from vidmill.api.transparent_render import TransparentNotices

    return {"qencode": QencodeNotices(settings), "octet": OctetNotices(), "transparent": TransparentNotices()}


def notice_senders(settings: Settings) -> dict[str, Sender]:
    """How each channel sends: HTTP callbacks (signed POSTs) and e-mail (SMTP)."""
    from vidmill.notify.callbacks import HttpSender
    from vidmill.notify.email import SmtpSender

    return {HTTP: HttpSender(settings), EMAIL: SmtpSender(settings)}


class Runtime:
    def __init__(self, settings: Settings, *, start_workers: bool = True):
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        settings.files_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.db.migrate()
        self.projects = Projects(self.db, settings.session_ttl_seconds)
        self.tasks = Tasks(self.db)
        self.profiles = Profiles(self.db)
        self.deliverer = Deliverer(self.db, settings, notice_renderers(settings), senders=notice_senders(settings))
        self.jobs = JobStore(self.db, lease_seconds=settings.lease_seconds, max_attempts=settings.max_attempts,
                             on_outbox=self.deliverer.wake.set)
        self.executor = LocalExecutor(JobContext(settings, self.jobs), workers=settings.workers)
        self.uploads = Uploads(self.db, settings)
        self.janitor = Janitor(self.uploads, settings.upload_sweep_seconds)
        self.start_workers = start_workers
        self.generated_key: str | None = None

    def start(self) -> None:
        _, self.generated_key = self.projects.ensure_default(self.settings.api_key or None)
        if self.start_workers:
            self.executor.start()
            self.deliverer.start()
            self.janitor.start()

    def stop(self) -> None:
        if self.start_workers:
            self.executor.stop()
            self.deliverer.stop()
            self.janitor.stop()
        self.db.dispose()

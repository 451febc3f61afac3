"""Direct uploads: durable records, per-project limits and quota, expiry, and the read side for ``tus:`` sources.

The TUS protocol itself is ``api/tus.py``'s (a library); this module is the policy and the truth:

    Uploads.create(task, size, filename)   refuses an upload over the project's size limit or quota, at creation
    Uploads.for_source(uuid, project_id)   the bytes of a finished, unexpired upload of that project
    Uploads.sweep()                        deletes expired uploads (bytes, library sidecars, then marks the row)

Bytes live in ``DATA_DIR/uploads/<project id>/<uuid>``: one folder per project, so the protocol library can
only ever open uploads of the project whose task token is in the URL.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from tuspyserver.lock import LockTimeoutError, acquire_upload_lock

from vidmill.core.projects import ProjectRef
from vidmill.errors import LimitExceeded, NotFound, SourceError
from vidmill.store.db import Database
from vidmill.store.models import Project, Task, Upload, utcnow

log = logging.getLogger("vidmill.uploads")


@dataclass(frozen=True)
class UploadTask:
    """The task whose token is in an upload URL: who may upload, and whether it may still."""

    id: int
    token: str
    project_id: int
    status: str


@dataclass(frozen=True)
class UploadRef:
    uuid: str
    project_id: int
    task_id: int
    size: int
    offset: int
    filename: str | None
    complete: bool
    expires_at: datetime
    deleted_at: datetime | None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def expired(self, now: datetime | None = None) -> bool:
        """Past its expiry now, or deleted by the janitor once it was."""
        if self.deleted_at is not None and self.deleted_at >= self.expires_at:
            return True
        return self.expires_at <= (now or utcnow())


def _ref(u: Upload) -> UploadRef:
    return UploadRef(u.uuid, u.project_id, u.task_id, u.size, u.offset, u.filename, u.completed_at is not None,
                     u.expires_at, u.deleted_at)


def parse_uuid(text: str) -> str | None:
    """``tus:<uuid>``'s uuid in the form files are named by (32 lowercase hex), or None if it is not one."""
    try:
        return uuidlib.UUID(text.strip()).hex
    except (ValueError, AttributeError):
        return None


class Uploads:
    def __init__(self, db: Database, settings):
        self.db = db
        self.settings = settings
        self.root = Path(settings.uploads_dir)

    # -- where bytes live -------------------------------------------------------------------------------------
    def project_dir(self, project_id: int) -> Path:
        return self.root / str(int(project_id))

    def path(self, ref: UploadRef) -> Path:
        return self.project_dir(ref.project_id) / ref.uuid

    # -- records ----------------------------------------------------------------------------------------------
    def task(self, token: str) -> UploadTask | None:
        with self.db.tx(readonly=True) as s:
            t = s.scalars(select(Task).where(Task.token == token)).first()
            return None if t is None else UploadTask(t.id, t.token, t.project_id, t.status)

    def get(self, uuid: str) -> UploadRef | None:
        with self.db.tx(readonly=True) as s:
            u = s.scalars(select(Upload).where(Upload.uuid == uuid)).first()
            return None if u is None else _ref(u)

    def limits(self, project_id: int) -> tuple[int, int]:
        """(largest single upload, quota of all live uploads) of a project, in bytes."""
        with self.db.tx(readonly=True) as s:
            return self._limits(s.get(Project, project_id))

    def _limits(self, project: Project) -> tuple[int, int]:
        max_bytes = project.upload_max_bytes if project.upload_max_bytes is not None else self.settings.upload_max_bytes
        quota = project.upload_quota_bytes if project.upload_quota_bytes is not None else self.settings.upload_quota_bytes
        return max_bytes, quota

    def create(self, task: UploadTask, size: int, filename: str | None = None) -> UploadRef:
        """A new upload record of ``size`` bytes for ``task``'s project, refused (``LimitExceeded``) when it is
        larger than the project allows or would take the project's live uploads over its quota. The check and
        the insert are one transaction (the project row locked), so two creations cannot both slip under."""
        if size <= 0:
            raise LimitExceeded("an empty upload cannot be a source: Upload-Length must be at least 1 byte")
        with self.db.tx() as s:
            q = select(Project).where(Project.id == task.project_id)
            if not self.db.is_sqlite:
                q = q.with_for_update()
            project = s.scalars(q).one()
            max_bytes, quota = self._limits(project)
            if size > max_bytes:
                raise LimitExceeded(f"upload of {size} bytes is over this project's limit of {max_bytes} bytes "
                                    f"per upload")
            count, used = s.execute(select(func.count(Upload.id), func.coalesce(func.sum(Upload.size), 0)).where(
                Upload.project_id == project.id, Upload.deleted_at.is_(None))).one()
            if count >= self.settings.upload_max_count:
                raise LimitExceeded(f"this project has {count} live uploads, the most it may keep; use or delete "
                                    f"some first")
            if used + size > quota:
                raise LimitExceeded(f"upload of {size} bytes would exceed this project's upload quota "
                                    f"({used} of {quota} bytes in use)")
            now = utcnow()
            row = Upload(uuid=uuidlib.uuid4().hex, project_id=project.id, task_id=task.id, size=size, offset=0,
                         filename=(filename or None) and filename[:255], created_at=now,
                         expires_at=now + timedelta(seconds=self.settings.upload_ttl_seconds))
            s.add(row)
            s.flush()
            return _ref(row)

    def record_offset(self, uuid: str, offset: int) -> None:
        with self.db.tx() as s:
            u = s.scalars(select(Upload).where(Upload.uuid == uuid)).first()
            if u is not None and offset > u.offset:
                u.offset = min(offset, u.size)

    def mark_complete(self, uuid: str) -> bool:
        """Record a finished upload if its bytes on disk are all there; True when it is complete."""
        with self.db.tx() as s:
            u = s.scalars(select(Upload).where(Upload.uuid == uuid)).first()
            if u is None or u.deleted_at is not None:
                return False
            if u.completed_at is None:
                if not self._bytes_complete(_ref(u)):
                    return False
                u.offset, u.completed_at = u.size, utcnow()
            return True

    def _bytes_complete(self, ref: UploadRef) -> bool:
        """The protocol library's own record says every byte arrived, and the file has exactly that many."""
        path = self.path(ref)
        try:
            info = json.loads(path.with_name(path.name + ".info").read_text())
            return int(info.get("offset", -1)) == ref.size and path.stat().st_size == ref.size
        except (OSError, ValueError, TypeError):
            return False

    def trim_unrecorded_tail(self, ref: UploadRef) -> None:
        """Cut bytes past the offset the protocol library recorded. The library appends a PATCH's body as it
        arrives and records the new offset at the end, so a server killed mid-PATCH leaves bytes it never
        acknowledged; the client resends them from the recorded offset and, without this, they would be
        appended twice. Skipped while another request holds the upload's lock (its bytes are unrecorded yet)."""
        path = self.path(ref)
        try:
            with acquire_upload_lock(str(path), locks_dir=str(path.parent / ".locks"), blocking=False):
                offset = int(json.loads(path.with_name(path.name + ".info").read_text())["offset"])
                if path.stat().st_size > offset:
                    log.warning("upload %s: cutting %d unrecorded bytes (a PATCH was interrupted)", ref.uuid,
                                path.stat().st_size - offset)
                    os.truncate(path, offset)
        except (OSError, ValueError, KeyError, TypeError, LockTimeoutError):
            return  # locked by a PATCH in flight, or nothing there yet: the library answers as usual

    def mark_deleted(self, uuid: str, *, at: datetime | None = None) -> None:
        with self.db.tx() as s:
            u = s.scalars(select(Upload).where(Upload.uuid == uuid)).first()
            if u is not None and u.deleted_at is None:
                u.deleted_at = at or utcnow()

    def set_limits(self, project_name: str, *, max_bytes: int | None, quota_bytes: int | None) -> ProjectRef:
        with self.db.tx() as s:
            p = s.scalars(select(Project).where(Project.name == project_name)).first()
            if p is None:
                raise NotFound(f"no project named {project_name!r}")
            p.upload_max_bytes, p.upload_quota_bytes = max_bytes, quota_bytes
            return ProjectRef(p.id, p.name, p.callback_secret)

    # -- expiry -----------------------------------------------------------------------------------------------
    def sweep(self, now: datetime | None = None) -> int:
        """Delete every expired upload: its bytes and the library's sidecar files first, then mark the row
        (a crash in between leaves a row the next sweep finishes). Returns how many were deleted."""
        now = now or utcnow()
        with self.db.tx(readonly=True) as s:
            due = [_ref(u) for u in s.scalars(select(Upload).where(Upload.deleted_at.is_(None),
                                                                   Upload.expires_at <= now).limit(500))]
        for ref in due:
            self._remove_files(ref)
            self.mark_deleted(ref.uuid, at=now)
        if due:
            log.info("deleted %d expired upload(s)", len(due))
        return len(due)

    def _remove_files(self, ref: UploadRef) -> None:
        path = self.path(ref)
        for p in (path, path.with_name(path.name + ".info"), path.parent / ".locks" / (path.name + ".lock")):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                log.exception("could not delete %s", p)

    # -- tus: sources -----------------------------------------------------------------------------------------
    def for_source(self, uuid_text: str, project_id: int | None) -> tuple[UploadRef, Path]:
        """The finished upload ``uuid_text`` of ``project_id`` and where its bytes are; ``SourceError`` with a
        clear reason otherwise. Another project's upload is "not found", exactly like one that never existed."""
        uuid = parse_uuid(uuid_text)
        if uuid is None:
            raise SourceError("source tus:<id>: not an upload id (expected the id from the upload's Location URL)")
        ref = self.get(uuid)
        if ref is None or project_id is None or ref.project_id != project_id:
            raise SourceError(f"source tus:{uuid}: no such upload in this project")
        if ref.expired():
            raise SourceError(f"source tus:{uuid}: the upload has expired and was deleted; upload the file again")
        if ref.deleted:
            raise SourceError(f"source tus:{uuid}: the upload was deleted by its uploader; upload the file again")
        if not ref.complete and not self.mark_complete(uuid):
            raise SourceError(f"source tus:{uuid}: the upload is incomplete ({ref.offset} of {ref.size} bytes); "
                              f"finish it before starting the task")
        return ref, self.path(ref)


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def uploads_for(settings) -> Uploads:
    """``Uploads`` for code that is handed only settings (source fetches): one engine per database URL."""
    with _databases_lock:
        db = _databases.get(settings.database_url)
        if db is None:
            db = _databases[settings.database_url] = Database(settings.database_url)
    return Uploads(db, settings)


class Janitor:
    """Deletes expired uploads every ``interval`` seconds in a daemon thread."""

    def __init__(self, uploads: Uploads, interval: float):
        self.uploads, self.interval = uploads, max(0.1, interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="upload-janitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.uploads.sweep()
            except Exception:  # the store is down for a moment: try at the next round
                log.exception("upload sweep failed")

"""Projects, their API keys (stored hashed) and session tokens that expire."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from vidmill.errors import Conflict, NotFound, VidmillError
from vidmill.store.db import Database
from vidmill.store.models import ApiKey, Project, Session, utcnow


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class ProjectRef:
    id: int
    name: str
    callback_secret: str


def _ref(p: Project) -> ProjectRef:
    return ProjectRef(p.id, p.name, p.callback_secret)


class Projects:
    def __init__(self, db: Database, session_ttl_seconds: int = 86400):
        self.db = db
        self.session_ttl = timedelta(seconds=session_ttl_seconds)

    def create(self, name: str, api_key: str | None = None) -> tuple[ProjectRef, str]:
        """A new project and its first API key (returned in clear once, stored hashed)."""
        key = api_key or secrets.token_hex(16)
        if not name or len(name) > 200 or not name.isprintable():
            raise VidmillError("a project name is 1-200 printable characters")
        with self.db.tx() as s:
            if s.scalars(select(Project.id).where(Project.name == name)).first() is not None:
                raise Conflict(f"a project named {name!r} exists already")
            project = Project(name=name, callback_secret=secrets.token_hex(32))
            s.add(project)
            s.flush()
            s.add(ApiKey(project_id=project.id, key_hash=hash_secret(key), prefix=key[:6]))
            return _ref(project), key

    def add_key(self, project_name: str) -> str:
        key = secrets.token_hex(16)
        with self.db.tx() as s:
            project = s.scalars(select(Project).where(Project.name == project_name)).first()
            if project is None:
                raise NotFound(f"no project named {project_name!r}")
            s.add(ApiKey(project_id=project.id, key_hash=hash_secret(key), prefix=key[:6]))
        return key

    def list(self) -> list[dict]:
        with self.db.tx(readonly=True) as s:
            out = []
            for p in s.scalars(select(Project).order_by(Project.id)):
                keys = s.scalars(select(ApiKey).where(ApiKey.project_id == p.id)).all()
                out.append(
                    {
                        "id": p.id,
                        "name": p.name,
                        "callback_secret": p.callback_secret,
                        "keys": [k.prefix + "…" for k in keys if k.revoked_at is None],
                    }
                )
            return out

    def ensure_default(self, api_key: str | None) -> tuple[ProjectRef, str | None]:
        """The ``default`` project. A configured key is added if missing; with none configured, a key
        is generated on first start only. Returns the project and a key that was just generated."""
        with self.db.tx() as s:
            project = s.scalars(select(Project).where(Project.name == "default")).first()
            if project is not None:
                if api_key and s.scalars(select(ApiKey).where(ApiKey.key_hash == hash_secret(api_key))).first() is None:
                    s.add(ApiKey(project_id=project.id, key_hash=hash_secret(api_key), prefix=api_key[:6]))
                return _ref(project), None
        ref, key = self.create("default", api_key)
        return ref, (None if api_key else key)

    def by_key(self, api_key: str) -> ProjectRef:
        with self.db.tx(readonly=True) as s:
            row = s.scalars(
                select(ApiKey).where(ApiKey.key_hash == hash_secret(api_key), ApiKey.revoked_at.is_(None))
            ).first()
            if row is None:
                raise NotFound("API key not found")
            return _ref(s.get(Project, row.project_id))

    def new_session(self, project: ProjectRef) -> tuple[str, datetime]:
        token = secrets.token_hex(16)
        expires = utcnow() + self.session_ttl
        with self.db.tx() as s:
            s.add(Session(token_hash=hash_secret(token), project_id=project.id, expires_at=expires))
        return token, expires

    def by_session(self, token: str) -> ProjectRef:
        with self.db.tx(readonly=True) as s:
            row = s.get(Session, hash_secret(token))
            if row is None or row.expires_at <= utcnow():
                raise NotFound("Token not found")
            return _ref(s.get(Project, row.project_id))

    def get(self, project_id: int) -> ProjectRef:
        with self.db.tx(readonly=True) as s:
            return _ref(s.get(Project, project_id))

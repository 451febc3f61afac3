"""Stored encoding profiles of a project: a name and the ``format`` entries it expands to.

Qencode's ``start_encode`` names them by ``uid``; TransparentEdge orders by their integer ``id``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select

from vidmill.core.projects import ProjectRef
from vidmill.errors import NotFound
from vidmill.store.db import Database
from vidmill.store.models import Profile


@dataclass(frozen=True)
class ProfileView:
    id: int
    uid: str
    name: str
    formats: list


def _view(p: Profile) -> ProfileView:
    return ProfileView(p.id, p.uid, p.name, list(p.formats))


class Profiles:
    def __init__(self, db: Database):
        self.db = db

    def create(self, project: ProjectRef, name: str, formats: list[dict]) -> ProfileView:
        with self.db.tx() as s:
            p = Profile(project_id=project.id, uid=secrets.token_hex(8), name=name, formats=formats)
            s.add(p)
            s.flush()
            return _view(p)

    def list_for(self, project: ProjectRef) -> list[ProfileView]:
        with self.db.tx(readonly=True) as s:
            return [_view(p) for p in s.scalars(select(Profile).where(Profile.project_id == project.id)
                                                 .order_by(Profile.id))]

    def get(self, project: ProjectRef, profile_id: int) -> ProfileView:
        with self.db.tx(readonly=True) as s:
            return _view(self._own(s, project, profile_id))

    def update(self, project: ProjectRef, profile_id: int, *, name: str | None = None,
               formats: list[dict] | None = None) -> ProfileView:
        with self.db.tx() as s:
            p = self._own(s, project, profile_id)
            if name is not None:
                p.name = name
            if formats is not None:
                p.formats = formats
            s.flush()
            return _view(p)

    def delete(self, project: ProjectRef, profile_id: int) -> None:
        with self.db.tx() as s:
            s.delete(self._own(s, project, profile_id))

    @staticmethod
    def _own(s, project: ProjectRef, profile_id: int) -> Profile:
        p = s.get(Profile, profile_id)
        if p is None or p.project_id != project.id:  # another project's profile does not exist for this one
            raise NotFound(f"profile {profile_id} not found")
        return p

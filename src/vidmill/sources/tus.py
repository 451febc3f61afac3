"""``tus:<uuid>`` sources: a finished direct upload (``api/tus.py``) of the task's own project.

The upload's bytes are hard-linked into the job's work dir (copied when the work dir is on another file
system), so the upload expiring and being deleted meanwhile cannot take the source away from a running task.
Refused with a clear ``SourceError``: another project's upload (told apart from a missing one by nothing),
an incomplete one, an expired one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from vidmill.core.uploads import parse_uuid, uploads_for
from vidmill.errors import SourceError, SourceTooLarge, UrlRefused
from vidmill.sources.result import FetchResult, PartFile

SCHEMES = frozenset({"tus"})
_CHUNK = 1024 * 1024


def _uuid_text(url: str) -> str:
    return url.split(":", 1)[1] if ":" in url else ""


def vet(url: str, *, settings: Any) -> None:
    """The shape only: whose upload it is needs the task's project (``Uploads.for_source``)."""
    if parse_uuid(_uuid_text(url)) is None:
        raise UrlRefused("source tus:<id>: not an upload id (expected the id from the upload's Location URL)")


def fetch(url: str, dest: Path, *, settings: Any, cancel: threading.Event | None = None,
          project_id: int | None = None) -> FetchResult:
    ref, path = uploads_for(settings).for_source(_uuid_text(url), project_id)
    if ref.size > settings.max_source_bytes:
        raise SourceTooLarge(f"source is {ref.size} bytes, over the limit of {settings.max_source_bytes} bytes")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(".part")
    part.unlink(missing_ok=True)
    try:
        os.link(path, part)
        os.replace(part, dest)
    except FileNotFoundError:
        raise SourceError(f"source tus:{ref.uuid}: the upload's bytes are gone (expired meanwhile?); "
                          f"upload the file again")
    except OSError:  # another file system (or no hard links there): copy, cancellable
        try:
            with open(path, "rb") as src, PartFile(dest, limit=settings.max_source_bytes, cancel=cancel) as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
        except FileNotFoundError:
            raise SourceError(f"source tus:{ref.uuid}: the upload's bytes are gone (expired meanwhile?); "
                              f"upload the file again")
    size = dest.stat().st_size
    if size != ref.size:
        dest.unlink(missing_ok=True)
        raise SourceError(f"source tus:{ref.uuid}: the upload has {size} bytes, not the {ref.size} it declared")
    return FetchResult(dest, size, None)

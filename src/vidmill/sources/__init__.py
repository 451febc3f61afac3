"""Sources: fetch a task's input into its work dir, chosen by URL scheme.

    fetch(url, dest, *, settings, cancel=None, project_id=None) -> FetchResult
    vet(url, *, settings)   start-time check (SSRF guard, URL shape) so the user hears a refusal at once

One module per scheme, each exposing ``SCHEMES`` and a ``fetch`` with the same signature (and optionally
``vet``): ``http`` (http, https, presigned URLs), ``s3``, ``ftp`` (ftp, ftps), ``sftp``, ``tus`` (direct
uploads; ``project_id`` makes a ``tus:`` upload readable only by its own project). Each module translates
its library's errors into ``SourceError`` / ``UrlRefused`` once, with no credential in the message, and
writes through ``PartFile`` so a failed fetch never leaves half a file under ``dest``.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from vidmill.errors import UrlRefused
from vidmill.sources.result import FetchResult, PartFile

# scheme -> module; a module that is not there (yet) makes its scheme refused, never a crash
REGISTRY: dict[str, str] = {
    "http": "vidmill.sources.http",
    "https": "vidmill.sources.http",
    "s3": "vidmill.sources.s3",
    "ftp": "vidmill.sources.ftp",
    "ftps": "vidmill.sources.ftp",
    "sftp": "vidmill.sources.sftp",
    "tus": "vidmill.sources.tus",
}

__all__ = ["FetchResult", "PartFile", "REGISTRY", "fetch", "module_for", "scheme_of", "vet"]


def scheme_of(url: str) -> str:
    return url.split(":", 1)[0].lower() if isinstance(url, str) and ":" in url else ""


def module_for(url: str) -> ModuleType:
    """The module that fetches ``url``; ``UrlRefused`` for a scheme no module handles."""
    scheme = scheme_of(url)
    name = REGISTRY.get(scheme)
    if name is None:
        raise UrlRefused(f"source scheme '{scheme or '(none)'}:' is not supported")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise UrlRefused(f"source scheme '{scheme}:' is not supported by this server") from exc
    if scheme not in module.SCHEMES:
        raise UrlRefused(f"source scheme '{scheme}:' is not supported")
    return module


def fetch(url: str, dest: Path, *, settings: Any, cancel: threading.Event | None = None,
          project_id: int | None = None) -> FetchResult:
    """Fetch ``url`` to ``dest`` with the module of its scheme."""
    return module_for(url).fetch(url, Path(dest), settings=settings, cancel=cancel, project_id=project_id)


def vet(url: str, *, settings: Any) -> None:
    """Refuse now what the fetch would refuse later (scheme, URL shape, SSRF guard); DNS failures pass."""
    module = module_for(url)
    check = getattr(module, "vet", None)
    if check is not None:
        check(url, settings=settings)

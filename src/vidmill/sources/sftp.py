"""``sftp://`` sources: ``sftp://[user:password@]host[:port]/path`` (path relative to the login folder)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncssh

from vidmill.errors import SourceError, SourceTooLarge, UrlRefused
from vidmill.net import sftp as sftpnet
from vidmill.sources.result import FetchResult, PartFile

SCHEMES = ("sftp",)
BLOCK = 256 * 1024


def _parse(url: str):
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("source URL is not a valid sftp:// URL") from None
    path = unquote(parts.path).lstrip("/")
    if not parts.hostname or not path or path.endswith("/") or parts.query or parts.fragment:
        raise UrlRefused("source must look like sftp://[user:password@]host[:port]/path/file")
    return (parts.hostname.lower(), port, unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None, path)


def vet(url: str, *, settings: Any) -> None:
    host, port, *_ = _parse(url)
    sftpnet.vet(host, port, settings)


def fetch(url: str, dest: Path, *, settings: Any, cancel: threading.Event | None = None,
          project_id: int | None = None) -> FetchResult:
    host, port, user, password, path = _parse(url)
    what = f"source download from sftp://{host}{f':{port}' if port else ''} failed"

    async def download(sftp: asyncssh.SFTPClient) -> int:
        with PartFile(dest, limit=settings.max_source_bytes, cancel=cancel) as out:
            async with sftp.open(path, "rb", block_size=BLOCK) as remote:
                out.check_total((await remote.stat()).size)
                while chunk := await remote.read(BLOCK):
                    out.write(chunk)
        return out.size

    try:
        size = sftpnet.run(host, port, user, password, settings, download)
    except (SourceError, SourceTooLarge, UrlRefused):
        raise
    except sftpnet.ERRORS as exc:
        raise SourceError(f"{what}: {sftpnet.describe(exc)}") from exc
    return FetchResult(path=Path(dest), size=size)

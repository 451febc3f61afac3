"""``sftp://`` sources: ``sftp://[user:password@]host[:port]/path`` (path relative to the login folder)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import asyncssh

from vidmill.errors import SourceError, SourceTooLarge, UrlRefused
from vidmill.net import sftp as sftpnet
from vidmill.sources.remote import parse_remote
from vidmill.sources.result import FetchResult, PartFile

SCHEMES = ("sftp",)
BLOCK = 256 * 1024


def vet(url: str, *, settings: Any) -> None:
    r = parse_remote(url, "sftp")
    sftpnet.vet(r.host, r.port, settings)


def fetch(url: str, dest: Path, *, settings: Any, cancel: threading.Event | None = None,
          project_id: int | None = None) -> FetchResult:
    r = parse_remote(url, "sftp")
    what = f"source download from {r.where()} failed"

    async def download(sftp: asyncssh.SFTPClient) -> int:
        with PartFile(dest, limit=settings.max_source_bytes, cancel=cancel) as out:
            async with sftp.open(r.path, "rb", block_size=BLOCK) as remote:
                out.check_total((await remote.stat()).size)
                while chunk := await remote.read(BLOCK):
                    out.write(chunk)
        return out.size

    try:
        size = sftpnet.run(r.host, r.port, r.user, r.password, settings, download)
    except (SourceError, SourceTooLarge, UrlRefused):
        raise
    except sftpnet.ERRORS as exc:
        raise SourceError(f"{what}: {sftpnet.describe(exc)}") from exc
    return FetchResult(path=Path(dest), size=size)

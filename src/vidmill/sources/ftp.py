"""``ftp://`` and ``ftps://`` (explicit TLS) sources: ``ftp[s]://[user:password@]host[:port]/path``."""

from __future__ import annotations

import ftplib
import threading
from pathlib import Path
from typing import Any

from vidmill.errors import SourceError, SourceTooLarge, UrlRefused
from vidmill.net import ftp as ftpnet
from vidmill.net.ssrf import check_url
from vidmill.sources.remote import parse_remote
from vidmill.sources.result import FetchResult, PartFile

SCHEMES = ("ftp", "ftps")


def vet(url: str, *, settings: Any) -> None:
    r = parse_remote(url, "ftp[s]")
    shown = f"[{r.host}]" if ":" in r.host else r.host
    check_url(f"ftp://{shown}:{r.port or ftpnet.DEFAULT_PORT}/", allow_private=settings.allow_private_networks,
              schemes=frozenset({"ftp"}))


def fetch(url: str, dest: Path, *, settings: Any, cancel: threading.Event | None = None,
          project_id: int | None = None) -> FetchResult:
    r = parse_remote(url, "ftp[s]")
    what = f"source download from {r.where()} failed"
    ftp = None
    try:
        ftp = ftpnet.connect(r.host, r.port, r.user, r.password, tls=r.scheme == "ftps", passive=True, settings=settings)
        try:
            size = ftp.size(r.path)
        except ftplib.error_perm:
            size = None  # SIZE is optional; the limit is then enforced while reading
        with PartFile(dest, limit=settings.max_source_bytes, cancel=cancel) as out:
            out.check_total(size)
            ftp.retrbinary(f"RETR {r.path}", out.write, blocksize=1 << 20)
        return FetchResult(path=Path(dest), size=out.size)
    except (SourceTooLarge, SourceError, UrlRefused):
        raise
    except ftpnet.ERRORS as exc:
        raise SourceError(f"{what}: {ftpnet.describe(exc, r.password, r.user)}") from exc
    finally:
        if ftp is not None:
            ftp.close()  # after an aborted transfer a polite QUIT could wait for the rest of the data

"""``ftp://`` and ``ftps://`` (explicit TLS) sources: ``ftp[s]://[user:password@]host[:port]/path``."""

from __future__ import annotations

import ftplib
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from vidmill.errors import SourceError, SourceTooLarge, UrlRefused
from vidmill.net import ftp as ftpnet
from vidmill.net.ssrf import check_url
from vidmill.sources.result import FetchResult, PartFile

SCHEMES = ("ftp", "ftps")


def _parse(url: str):
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("source URL is not a valid ftp:// URL") from None
    path = unquote(parts.path).lstrip("/")
    if not parts.hostname or not path or path.endswith("/") or parts.query or parts.fragment:
        raise UrlRefused("source must look like ftp[s]://[user:password@]host[:port]/path/file")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.scheme.lower(), parts.hostname.lower(), port, user, password, path


def vet(url: str, *, settings: Any) -> None:
    _, host, port, _, _, _ = _parse(url)
    shown = f"[{host}]" if ":" in host else host
    check_url(f"ftp://{shown}:{port or ftpnet.DEFAULT_PORT}/", allow_private=settings.allow_private_networks,
              schemes=frozenset({"ftp"}))


def fetch(url: str, dest: Path, *, settings: Any, cancel: threading.Event | None = None,
          project_id: int | None = None) -> FetchResult:
    scheme, host, port, user, password, path = _parse(url)
    what = f"source download from {scheme}://{host}{f':{port}' if port else ''} failed"
    ftp = None
    try:
        ftp = ftpnet.connect(host, port, user, password, tls=scheme == "ftps", passive=True, settings=settings)
        try:
            size = ftp.size(path)
        except ftplib.error_perm:
            size = None  # SIZE is optional; the limit is then enforced while reading
        with PartFile(dest, limit=settings.max_source_bytes, cancel=cancel) as out:
            out.check_total(size)
            ftp.retrbinary(f"RETR {path}", out.write, blocksize=1 << 20)
        return FetchResult(path=Path(dest), size=out.size)
    except (SourceTooLarge, SourceError, UrlRefused):
        raise
    except ftpnet.ERRORS as exc:
        raise SourceError(f"{what}: {ftpnet.describe(exc, password, user)}") from exc
    finally:
        if ftp is not None:
            ftp.close()  # after an aborted transfer a polite QUIT could wait for the rest of the data

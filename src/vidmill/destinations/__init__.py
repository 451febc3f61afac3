"""Destinations: put an output's files where the user keeps them and say where each landed.

    put(files, target, *, settings, cancel=None) -> list[Landed]   one destination
    put_all(files, targets, ...) -> list[list[Landed]]             a fan-out (format[].destination as a list)
    vet(target, *, settings)                                       start-time check (URL shape, SSRF guard)

``files`` are ``OutputFile(name, path)``: ``name`` is the file's path relative to the output (``video.mp4``,
``720p/seg_001.ts``), the first one the output's main file (its URL is the status ``url``). A destination
URL ending in ``/`` is a folder (every file lands under it by name); otherwise a single-file output lands
exactly at the URL, and a many-file output treats the URL as a folder.

One module per scheme exposes ``SCHEMES`` and ``put(pairs, target, location, *, settings, cancel)``:
``s3`` (s3, b2: any S3-compatible endpoint), ``azblob``, ``ftp`` (ftp, ftps), ``sftp``. Each one writes so
that no half-written file ever sits under its final name (multipart and block uploads commit at the end;
FTP/SFTP upload to a temporary name and rename), retries transient failures with backoff, writes playlists
last, and translates its library's errors into ``StorageError`` once, with no credential in the message.
No destination keeps state on the API server: whichever process encodes a job uploads its outputs.
With no destination, outputs go to vidmill's own storage (``local``), served under ``/files``.
"""

from __future__ import annotations

import importlib
import mimetypes
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import ModuleType
from typing import Any

from vidmill.destinations.location import Location, check_path, key_for, parse
from vidmill.errors import StorageError, UrlRefused

REGISTRY: dict[str, str] = {
    "s3": "vidmill.destinations.s3",
    "b2": "vidmill.destinations.s3",
    "azblob": "vidmill.destinations.azblob",
    "ftp": "vidmill.destinations.ftp",
    "ftps": "vidmill.destinations.ftp",
    "sftp": "vidmill.destinations.sftp",
}

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml", ".ts": "video/mp2t",
    ".m4s": "video/iso.segment", ".mp4": "video/mp4", ".m4a": "audio/mp4", ".m4v": "video/mp4",
    ".webm": "video/webm", ".mp3": "audio/mpeg", ".aac": "audio/aac", ".flac": "audio/flac",
    ".vtt": "text/vtt", ".srt": "application/x-subrip", ".json": "application/json", ".txt": "text/plain",
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".key": "application/octet-stream",
}
PLAYLISTS = (".m3u8", ".mpd")

__all__ = ["Landed", "Location", "OutputFile", "Target", "content_type", "put", "put_all", "upload_order", "vet"]


@dataclass(frozen=True)
class Target:
    """One destination as the core knows it (dialects translate their own shapes into this)."""

    url: str = field(repr=False)  # may carry user:password@
    key: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    permissions: str | None = None  # S3 canned ACL
    storage_class: str | None = None
    cache_control: str | None = None
    is_passive: bool | None = None  # FTP: passive mode (default on)
    use_tls: bool | None = None  # FTP: explicit TLS (ftps:// implies it)

    @classmethod
    def from_dict(cls, data: dict) -> "Target":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class OutputFile:
    name: str  # relative path under the output's folder
    path: Path


@dataclass(frozen=True)
class Landed:
    """Where one file went: a public URL (no credential) and the storage facts status shows."""

    name: str
    url: str
    size: int
    storage: dict  # type, host, bucket + key or path


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _rank(output: OutputFile) -> int:
    """0 a segment (or any other file), 1 a media playlist, 2 a master: an MPD, or an HLS playlist naming others."""
    if Path(output.name).suffix.lower() not in PLAYLISTS:
        return 0
    if output.name.lower().endswith(".mpd"):
        return 2
    try:
        text = output.path.read_text(errors="replace")
    except OSError:
        return 1
    return 2 if any(tag in text for tag in ("#EXT-X-STREAM-INF", "#EXT-X-MEDIA:", "#EXT-X-I-FRAME-STREAM-INF")) else 1


def upload_order(pairs: list) -> list:
    """Segments first, then media playlists, then masters: a reader never finds a playlist naming a file that is
    not there yet (a master uploaded before its chunklists answered its players 404 for a while)."""
    return sorted(pairs, key=lambda p: _rank(p[0]))


def module_for(scheme: str) -> ModuleType:
    name = REGISTRY.get(scheme)
    if name is None:
        raise StorageError(f"destination scheme '{scheme}:' is not supported")
    return importlib.import_module(name)


def put(files: list[OutputFile], target: Target, *, settings: Any,
        cancel: threading.Event | None = None) -> list[Landed]:
    """Upload ``files`` to ``target``; returns one ``Landed`` per file, in the order given."""
    if not files:
        raise StorageError("nothing to store")
    names = [check_path(f.name) for f in files]
    if len(set(names)) != len(names):
        raise StorageError("cannot store two files under the same name")
    location = parse(target.url)
    module = module_for(location.scheme)
    many = len(files) > 1
    pairs = [(f, key_for(location, f.name, many=many)) for f in files]
    try:
        return module.put(pairs, target, location, settings=settings, cancel=cancel)
    except UrlRefused as exc:  # the SSRF guard on the endpoint: a storage failure of this output
        raise StorageError(f"{location.scheme} destination {location.netloc} refused: {exc.message}") from exc


def put_all(files: list[OutputFile], targets: list[Target], *, settings: Any,
            cancel: threading.Event | None = None) -> list[list[Landed]]:
    """Fan the same files out to every target, in order; the first failure ends the output."""
    return [put(files, t, settings=settings, cancel=cancel) for t in targets]


def vet(target: Target, *, settings: Any) -> None:
    """Refuse now what the upload would refuse later: URL shape, scheme, and the SSRF guard on its host."""
    location = parse(target.url)
    module = module_for(location.scheme)
    check = getattr(module, "vet", None)
    if check is not None:
        check(target, location, settings=settings)

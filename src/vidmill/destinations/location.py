"""Destination URLs parsed once, and the keys of the files put under them, which never escape their prefix.

A destination URL is ``scheme://[user[:password]@]host[:port]/path``; ``path`` ending in ``/`` is a
folder. The path is percent-decoded exactly once; a decoded path (or file name) is refused when it
holds ``..`` or ``.`` segments, empty segments, backslashes, control characters, or a percent-escape
that would decode again (``%252e%252e`` -> ``%2e%2e``): no spelling of a key leaves its prefix.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from vidmill.errors import StorageError

_ENCODED_AGAIN = re.compile(r"%(2e|2f|5c|25|00)", re.IGNORECASE)


@dataclass(frozen=True)
class Location:
    """A parsed destination URL. ``path`` is decoded, without its leading ``/``; credentials hidden from repr."""

    scheme: str
    host: str
    port: int | None
    path: str
    folder: bool
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def url_for(self, path: str) -> str:
        """The public form of ``path`` at this destination: never any credential in it."""
        return f"{self.scheme}://{self.netloc}/{quote(path, safe='/')}"


def parse(url: str) -> Location:
    """Parse a destination URL; ``StorageError`` (without the URL's credentials) when it is unusable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise StorageError("destination URL is not a valid URL") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise StorageError("destination URL has no host")
    if parts.query or parts.fragment:
        raise StorageError("destination URL must not have a query (?) or fragment (#)")
    raw = parts.path.lstrip("/") if parts.path.startswith("/") and not parts.path.startswith("//") else None
    if raw is None:
        raise StorageError("destination path must start with a single '/'")
    folder = raw == "" or raw.endswith("/")
    path = check_path(unquote(raw.rstrip("/")), allow_empty=True) if raw.strip("/") else ""
    return Location(
        scheme=parts.scheme.lower(), host=host, port=port, path=path, folder=folder,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def check_path(path: str, *, allow_empty: bool = False) -> str:
    """``path`` if it is a clean relative path (segments joined by ``/``); else ``StorageError``."""
    if not path:
        if allow_empty:
            return path
        raise StorageError("destination path refused: empty")
    if path.startswith("/"):
        raise StorageError("destination path refused: absolute path")
    if "\\" in path:
        raise StorageError("destination path refused: backslash")
    if _ENCODED_AGAIN.search(path):
        raise StorageError("destination path refused: encoded '.', '/', '\\\\' or '%' (double encoding)")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in path):
        raise StorageError("destination path refused: control characters")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise StorageError(f"destination path refused: '{segment or '//'}' segment")
    return path


def key_for(location: Location, name: str, *, many: bool) -> str:
    """Where file ``name`` (relative, from the plan) goes: under the folder, or at the file URL itself."""
    name = check_path(name)
    if location.folder or many:
        return f"{location.path}/{name}" if location.path else name
    if not location.path:
        raise StorageError("destination URL names no file")
    return location.path

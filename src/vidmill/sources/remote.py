"""The file URL shared by the login-based sources (``ftp``, ``ftps``, ``sftp``):
``scheme://[user:password@]host[:port]/path/file``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from vidmill.errors import UrlRefused


@dataclass(frozen=True)
class RemoteFile:
    scheme: str
    host: str
    port: int | None
    user: str | None
    password: str | None
    path: str  # relative to the login folder, never empty, never a folder

    def where(self) -> str:
        """The server as it may be shown (never the credentials)."""
        return f"{self.scheme}://{self.host}{f':{self.port}' if self.port else ''}"


def parse_remote(url: str, shape: str) -> RemoteFile:
    """Split a source URL; ``shape`` names the accepted form in the refusal (``ftp[s]``, ``sftp``)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused(f"source URL is not a valid {shape}:// URL") from None
    path = unquote(parts.path).lstrip("/")
    if not parts.hostname or not path or path.endswith("/") or parts.query or parts.fragment:
        raise UrlRefused(f"source must look like {shape}://[user:password@]host[:port]/path/file")
    return RemoteFile(scheme=parts.scheme.lower(), host=parts.hostname.lower(), port=port,
                      user=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None, path=path)

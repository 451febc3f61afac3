"""``sftp://`` destinations: ``sftp://[user:password@]host[:port]/path``, or user and password in ``key``/``secret``.

Files go up with asyncssh's parallel SFTP writes (several requests in flight per file); each one under a
hidden temporary name, renamed into place (``posix-rename`` when the server has it), so no half-written
file ever sits under its final name. Dropped connections reconnect and retry with backoff; refusals
(permission, no such folder, wrong password) end the output at once. Paths are relative to the login folder.
"""

from __future__ import annotations

import posixpath
import secrets
import threading
from typing import Any

import asyncssh

from vidmill.destinations import Landed, Location, OutputFile, Target, upload_order
from vidmill.destinations.retry import RetryPolicy, with_retries
from vidmill.errors import StorageError, UrlRefused
from vidmill.net import sftp as sftpnet

SCHEMES = ("sftp",)
BLOCK = 256 * 1024


def vet(target: Target, location: Location, *, settings: Any) -> None:
    sftpnet.vet(location.host, location.port, settings)


def put(pairs: list[tuple[OutputFile, str]], target: Target, location: Location, *, settings: Any,
        cancel: threading.Event | None = None) -> list[Landed]:
    user, password = target.key or location.username, target.secret or location.password
    where = f"sftp destination {location.netloc}"
    requests = max(4, int(getattr(settings, "upload_concurrency", 4)) * 4)
    done: set[str] = set()
    current: dict[str, str] = {}

    async def upload_all(sftp: asyncssh.SFTPClient) -> None:
        for output, key in upload_order(pairs):
            if key in done:
                continue  # uploaded before a retried connection
            if cancel is not None and cancel.is_set():
                raise StorageError("upload cancelled")
            current["name"] = output.name
            folder, name = posixpath.split(key)
            if folder:
                await sftp.makedirs(folder, exist_ok=True)
            temp = posixpath.join(folder, f".{name}.part-{secrets.token_hex(4)}")
            try:
                await sftp.put(str(output.path), temp, block_size=BLOCK, max_requests=requests)
                await _rename(sftp, temp, key)
            except BaseException:
                try:
                    await sftp.remove(temp)
                except Exception:
                    pass
                raise
            done.add(key)

    policy = RetryPolicy(max_attempts=int(getattr(settings, "upload_max_attempts", 4)))
    try:
        with_retries(lambda: sftpnet.run(location.host, location.port, user, password, settings, upload_all),
                     policy=policy, is_transient=sftpnet.is_transient, cancel=cancel)
    except UrlRefused as exc:
        raise StorageError(f"saving to {where} refused: {exc.message}") from exc
    except sftpnet.ERRORS as exc:
        name = current.get("name", pairs[0][0].name)
        raise StorageError(f"saving {name} to {where} failed: {sftpnet.describe(exc)}") from exc
    return [Landed(name=o.name, url=location.url_for(k), size=o.path.stat().st_size,
                   storage={"type": "sftp", "host": location.netloc, "path": k}) for o, k in pairs]


async def _rename(sftp: asyncssh.SFTPClient, temp: str, final: str) -> None:
    try:
        await sftp.posix_rename(temp, final)
    except asyncssh.SFTPOpUnsupported:
        if await sftp.exists(final):
            await sftp.remove(final)
        await sftp.rename(temp, final)

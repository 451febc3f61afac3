"""``ftp://`` and ``ftps://`` destinations (``is_passive`` default 1, ``use_tls`` for explicit TLS on ftp://).

URL: ``ftp[s]://[user:password@]host[:port]/path``, or the user and password in ``key`` / ``secret``. Paths
are relative to the login folder; missing folders are made level by level (``MKD``). Each file is stored
under a hidden temporary name and renamed into place, so a reader (or a retried job) never sees half a
file under its final name; transient failures (4xx replies, dropped connections) reconnect and retry with
backoff, refusals (5xx) end the output at once.
"""

from __future__ import annotations

import ftplib
import posixpath
import secrets
import threading
from typing import Any

from vidmill.destinations import Landed, Location, OutputFile, Target, upload_order
from vidmill.destinations.retry import RetryPolicy, with_retries
from vidmill.errors import StorageError, UrlRefused
from vidmill.net import ftp as ftpnet
from vidmill.net.ssrf import check_url

SCHEMES = ("ftp", "ftps")
BLOCK = 1 << 20


def _credentials(target: Target, location: Location) -> tuple[str | None, str | None]:
    return target.key or location.username, target.secret or location.password


def vet(target: Target, location: Location, *, settings: Any) -> None:
    shown = f"[{location.host}]" if ":" in location.host else location.host
    check_url(f"ftp://{shown}:{location.port or ftpnet.DEFAULT_PORT}/",
              allow_private=settings.allow_private_networks, schemes=frozenset({"ftp"}))


def put(pairs: list[tuple[OutputFile, str]], target: Target, location: Location, *, settings: Any,
        cancel: threading.Event | None = None) -> list[Landed]:
    user, password = _credentials(target, location)
    tls = location.scheme == "ftps" or bool(target.use_tls)
    where = f"{location.scheme} destination {location.netloc}"
    policy = RetryPolicy(max_attempts=int(getattr(settings, "upload_max_attempts", 4)))
    session: dict[str, ftplib.FTP] = {}

    def connection() -> ftplib.FTP:
        if "ftp" not in session:
            session["ftp"] = ftpnet.connect(location.host, location.port, user, password, tls=tls,
                                            passive=target.is_passive is not False, settings=settings)
        return session["ftp"]

    def drop() -> None:
        ftp = session.pop("ftp", None)
        if ftp is not None:
            ftpnet.close(ftp)

    def store(output: OutputFile, key: str) -> None:
        try:
            ftp = connection()
            folder, name = posixpath.split(key)
            _make_dirs(ftp, folder)
            temp = posixpath.join(folder, f".{name}.part-{secrets.token_hex(4)}")
            try:
                with open(output.path, "rb") as data:
                    ftp.storbinary(f"STOR {temp}", data, blocksize=BLOCK)
                _rename(ftp, temp, key)
            except BaseException:
                _remove_quietly(ftp, temp)
                raise
        except ftpnet.ERRORS:
            drop()  # a failed command may leave the session in any state: start over on retry
            raise

    try:
        for output, key in upload_order(pairs):
            if cancel is not None and cancel.is_set():
                raise StorageError("upload cancelled")
            try:
                with_retries(lambda o=output, k=key: store(o, k), policy=policy, is_transient=ftpnet.is_transient,
                             cancel=cancel)
            except UrlRefused as exc:
                raise StorageError(f"saving to {where} refused: {exc.message}") from exc
            except ftpnet.ERRORS as exc:
                raise StorageError(f"saving {output.name} to {where} failed: "
                                   f"{ftpnet.describe(exc, password, user)}") from exc
    finally:
        drop()
    return [Landed(name=o.name, url=location.url_for(k), size=o.path.stat().st_size,
                   storage={"type": location.scheme, "host": location.netloc, "path": k}) for o, k in pairs]


def _make_dirs(ftp: ftplib.FTP, folder: str) -> None:
    """``MKD`` each level (no ``mkdir -p`` in FTP); an existing level answers 550, which is fine."""
    path = ""
    for part in folder.split("/") if folder else []:
        path = f"{path}/{part}" if path else part
        try:
            ftp.mkd(path)
        except ftplib.error_perm:
            pass  # exists already, or no permission: the STOR that follows says which


def _rename(ftp: ftplib.FTP, temp: str, final: str) -> None:
    try:
        ftp.rename(temp, final)
    except ftplib.error_perm:
        # some servers refuse to rename over an existing file: replace it
        try:
            ftp.delete(final)
        except ftplib.error_perm:
            raise
        ftp.rename(temp, final)


def _remove_quietly(ftp: ftplib.FTP, path: str) -> None:
    try:
        ftp.delete(path)
    except Exception:
        pass

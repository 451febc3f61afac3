"""One way to open an SFTP session (asyncssh) for sources and destinations, and its errors in words.

asyncssh is asynchronous; callers in worker threads run a coroutine with ``run`` (a private event loop
per call). The TCP connection goes to the IP the SSRF guard vetted. Qencode's destination object carries
no host key, so by default the server's host key is not verified (as with Qencode itself): the password goes
only to the address the guard allowed. With ``VIDMILL_SFTP_KNOWN_HOSTS`` set, the server must present a key
listed in that OpenSSH known_hosts file under the host name of the URL (not the vetted IP), before any
password is sent. The client never reads ``~/.ssh`` (no keys, no agent, no config).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncssh

from vidmill.net.ssrf import check_url

DEFAULT_PORT = 22
T = TypeVar("T")


def vet(host: str, port: int | None, settings: Any):
    shown = f"[{host}]" if ":" in host else host
    return check_url(f"sftp://{shown}:{port or DEFAULT_PORT}/", allow_private=settings.allow_private_networks,
                     schemes=frozenset({"sftp"}))


def run(host: str, port: int | None, user: str | None, password: str | None, settings: Any,
        work: Callable[[asyncssh.SFTPClient], Awaitable[T]]) -> T:
    """Connect, open SFTP, ``await work(sftp)``, close; all inside one private event loop."""
    resolved = vet(host, port, settings)
    timeout = float(getattr(settings, "storage_timeout", 60.0))
    known = getattr(settings, "sftp_known_hosts", None)
    checks: dict[str, Any] = {"known_hosts": None}
    if known:
        checks = {"known_hosts": asyncssh.read_known_hosts(str(known)), "host_key_alias": host}

    async def session() -> T:
        async with asyncssh.connect(
            resolved.ip, resolved.port, username=user or "anonymous", password=password,
            client_keys=[], agent_path=None, config=[], connect_timeout=timeout,
            preferred_auth="password,keyboard-interactive", **checks,
        ) as conn:
            async with conn.start_sftp_client() as sftp:
                return await asyncio.wait_for(work(sftp), timeout=None)

    return _run_private(session)


def _run_private(make: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run`` on a private loop; from a thread that already runs a loop, on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=target, name="vidmill-sftp", daemon=True)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def describe(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return "the server's host key is not the one VIDMILL_SFTP_KNOWN_HOSTS lists for it"
    if isinstance(exc, asyncssh.PermissionDenied):
        return "login refused: wrong user or password"
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return "the server refused: no permission here"
    if isinstance(exc, (asyncssh.SFTPNoSuchFile, getattr(asyncssh, "SFTPNoSuchPath", asyncssh.SFTPNoSuchFile))):
        return "no such file or folder"
    if isinstance(exc, asyncssh.SFTPFailure):
        return "the server refused the operation (failure)"
    if isinstance(exc, asyncssh.SFTPError):
        return f"the server refused ({type(exc).__name__})"
    if isinstance(exc, (asyncssh.DisconnectError, asyncssh.ConnectionLost)):
        return f"the connection was lost ({type(exc).__name__})"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "the server did not answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return f"connection failed ({type(exc).__name__})"
    return type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (asyncssh.PermissionDenied, asyncssh.HostKeyNotVerifiable, asyncssh.SFTPError)):
        return False
    return isinstance(exc, (asyncssh.DisconnectError, asyncssh.ConnectionLost, OSError, TimeoutError,
                            asyncio.TimeoutError))


ERRORS = (asyncssh.Error, asyncssh.SFTPError, OSError, asyncio.TimeoutError)


def run_coroutine(coro: Awaitable[T]) -> T:
    """Run one coroutine the same way (private loop, or a thread of its own if this thread runs a loop)."""
    return _run_private(lambda: coro)

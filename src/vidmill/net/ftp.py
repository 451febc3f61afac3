"""One way to open an FTP / explicit-FTPS session for sources and destinations, and ftplib's errors in words.

The control connection goes to the IP the SSRF guard vetted; passive data connections go to that same
peer (ftplib ignores the address in the PASV answer). For FTPS the certificate is verified against the
URL's host name (``ftp.host`` is set back to the name before ``AUTH TLS``), with ``VIDMILL_STORAGE_CA_FILE``
trusted besides the system CAs. ``ftps://`` means explicit TLS (``AUTH TLS``) on port 21 unless a port is given;
``use_tls`` asks for it on an ``ftp://`` URL too.
"""

from __future__ import annotations

import ftplib
import socket
import ssl
from typing import Any

from vidmill.net.ssrf import check_url

DEFAULT_PORT = 21


def connect(host: str, port: int | None, user: str | None, password: str | None, *, tls: bool, passive: bool,
            settings: Any) -> ftplib.FTP:
    """A logged-in session in binary mode (``PROT P`` for TLS). Raises ftplib / OSError / ``UrlRefused``."""
    port = port or DEFAULT_PORT
    shown = f"[{host}]" if ":" in host else host
    resolved = check_url(f"ftp://{shown}:{port}/", allow_private=settings.allow_private_networks,
                         schemes=frozenset({"ftp"}))
    timeout = float(getattr(settings, "storage_timeout", 60.0))
    if tls:
        context = ssl.create_default_context()
        ca = getattr(settings, "storage_ca_file", None)
        if ca:
            context.load_verify_locations(cafile=str(ca))
        ftp: ftplib.FTP = ftplib.FTP_TLS(context=context, timeout=timeout)
    else:
        ftp = ftplib.FTP(timeout=timeout)
    try:
        ftp.connect(resolved.ip, port)
        ftp.host = host  # TLS checks the certificate against the name, not the IP we connected to
        ftp.login(user or "anonymous", password or "")
        if tls:
            ftp.prot_p()
        ftp.set_pasv(passive)
        ftp.voidcmd("TYPE I")
    except BaseException:
        close(ftp)
        raise
    return ftp


def close(ftp: ftplib.FTP) -> None:
    try:
        ftp.quit()
    except Exception:
        ftp.close()


def describe(exc: BaseException, *secrets: str | None) -> str:
    """An ftplib / socket / TLS error in words; the server's reply text with any secret removed."""
    if isinstance(exc, ftplib.Error):
        reply = str(exc).strip()
        for secret in secrets:
            if secret:
                reply = reply.replace(secret, "***")
        reply = reply[:160]
        code = reply[:3]
        if code == "530":
            return f"login refused: wrong user or password ({reply})"
        if code in ("550", "553", "532", "552"):
            return f"the server refused: no permission, no such file or folder, or no space ({reply})"
        return f"the server answered {reply}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "the server did not answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (OSError, EOFError)):
        return f"connection failed ({type(exc).__name__})"
    return type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """4xx replies, timeouts and dropped connections may pass; 5xx replies (refusals) will not."""
    if isinstance(exc, ftplib.error_temp):
        return True
    if isinstance(exc, (ftplib.error_perm, ftplib.error_proto, ssl.SSLCertVerificationError)):
        return False
    return isinstance(exc, (OSError, EOFError))


ERRORS = (ftplib.Error, OSError, EOFError)

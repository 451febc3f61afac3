"""One way to build a boto3 S3 client for a user's endpoint, and botocore's errors translated once.

Used by the ``s3://`` source and the ``s3://`` / ``b2://`` destinations. The client never falls back to
the server's own AWS credentials (environment, ``~/.aws``, instance metadata): with no key it is unsigned.
The endpoint host passes the SSRF guard first. Over https the TLS certificate binds the name, so a DNS
answer changed after the check (rebinding) cannot reach an internal service; a plain-http endpoint (only
for hosts listed in ``VIDMILL_STORAGE_PLAIN_HTTP_HOSTS``) is reached at the vetted IP itself.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError as BotoConnectionError

from vidmill.net.ssrf import check_url

_REGION_PATTERNS = (
    re.compile(r"^s3[.-]([a-z0-9-]+)\.amazonaws\.com$"),
    re.compile(r"^s3\.([a-z0-9-]+)\.backblazeb2\.com$"),
    re.compile(r"^([a-z0-9-]+)\.digitaloceanspaces\.com$"),
    re.compile(r"^s3\.([a-z0-9-]+)\.wasabisys\.com$"),
)

# S3 error codes users meet, in words (never the server's message: it may echo request details)
_CODES = {
    "InvalidAccessKeyId": "the access key is not known to the storage (wrong key)",
    "SignatureDoesNotMatch": "the storage refused the signature (wrong secret)",
    "AccessDenied": "access denied: the key may not write or read here",
    "AllAccessDisabled": "access denied: all access to this object is disabled",
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchKey": "the object does not exist",
    "InvalidBucketName": "the bucket name is not valid",
    "InvalidStorageClass": "the storage class is not valid for this storage",
    "AccessControlListNotSupported": "the bucket does not allow ACLs (permissions)",
    "EntityTooLarge": "the object is too large for this storage",
    "QuotaExceeded": "the storage quota is exceeded",
    "SlowDown": "the storage asks to slow down",
    "RequestTimeTooSkewed": "the storage clock and ours differ too much",
}
_STATUS = {403: "access denied (wrong key or secret, or no permission here)", 404: "not found (no such bucket or object)", 400: "bad request", 301: "wrong region or endpoint"}


@dataclass(frozen=True)
class Endpoint:
    """A user's S3-compatible endpoint: host, port, and how to reach it."""

    host: str
    port: int | None
    key: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def region(self) -> str:
        for pattern in _REGION_PATTERNS:
            match = pattern.match(self.host)
            if match:
                return match.group(1)
        return "us-east-1"


def plain_http(settings: Any, host: str, port: int | None) -> bool:
    """Whether ``host[:port]`` is listed for plain http (emulators, private gateways); https otherwise."""
    listed = {h.strip().lower() for h in (getattr(settings, "storage_plain_http_hosts", "") or "").split(",")
              if h.strip()}
    return host in listed or (port is not None and f"{host}:{port}" in listed)


def endpoint_url(endpoint: Endpoint, settings: Any) -> str:
    """Vet the endpoint with the SSRF guard; the URL the client should use (see the module doc)."""
    scheme = "http" if plain_http(settings, endpoint.host, endpoint.port) else "https"
    resolved = check_url(f"{scheme}://{endpoint.netloc}/", allow_private=settings.allow_private_networks)
    if scheme == "https":
        return f"https://{endpoint.netloc}"
    ip = f"[{resolved.ip}]" if ":" in resolved.ip else resolved.ip
    return f"http://{ip}:{resolved.port}"


def client(endpoint: Endpoint, settings: Any):
    """A boto3 S3 client for ``endpoint`` with explicit credentials (or unsigned), retries and timeouts."""
    timeout = float(getattr(settings, "storage_timeout", 60.0))
    config = Config(
        region_name=endpoint.region,
        signature_version=UNSIGNED if not endpoint.key else "s3v4",
        s3={"addressing_style": "virtual" if endpoint.host.endswith(".amazonaws.com") else "path"},
        retries={"mode": "standard", "max_attempts": int(getattr(settings, "upload_max_attempts", 4))},
        connect_timeout=timeout,
        read_timeout=timeout,
        max_pool_connections=max(10, int(getattr(settings, "upload_concurrency", 4)) * 2),
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    url = endpoint_url(endpoint, settings)
    with _SESSION_LOCK:  # botocore sessions are not thread-safe; clients are
        return _session().client("s3", endpoint_url=url, config=config, verify=_verify(settings),
                                 aws_access_key_id=endpoint.key or "anonymous",
                                 aws_secret_access_key=endpoint.secret or "anonymous")


_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> boto3.session.Session:
    """One session per process: it caches the S3 service model, which costs ~0.3 s of CPU to load.
    Credentials are passed per client, so nothing of one user's ever reaches another's client."""
    return boto3.session.Session(aws_access_key_id="anonymous", aws_secret_access_key="anonymous",
                                 region_name="us-east-1")


def transfer_config(settings: Any) -> TransferConfig:
    part = max(5 * 1024**2, int(getattr(settings, "upload_part_size", 8 * 1024**2)))
    return TransferConfig(multipart_threshold=part, multipart_chunksize=part,
                          max_concurrency=int(getattr(settings, "upload_concurrency", 4)), use_threads=True)


def _verify(settings: Any) -> str | bool:
    ca = getattr(settings, "storage_ca_file", None)
    return str(ca) if ca else True


def describe(exc: BaseException) -> str:
    """A botocore error in words, without anything from the request (no key, no secret, no signature)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        words = _CODES.get(code) or _STATUS.get(status) or "the storage refused the request"
        shown = f"{code}, HTTP {status}" if code and not code.isdigit() else f"HTTP {status}"
        return f"{words} ({shown})"
    if isinstance(exc, BotoConnectionError):
        return f"cannot connect to the storage ({type(exc).__name__})"
    if isinstance(exc, BotoCoreError):
        return f"storage client error ({type(exc).__name__})"
    return f"{type(exc).__name__}"


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, BotoConnectionError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or status == 429 or exc.response.get("Error", {}).get("Code") == "SlowDown"
    return False


@contextmanager
def map_errors(error_class: type[Exception], what: str) -> Iterator[None]:
    """Raise ``error_class(f"{what}: <words>")`` for any botocore / s3transfer failure (``from exc``)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise error_class(f"{what}: {describe(exc)}") from exc
    except Exception as exc:  # s3transfer wraps some failures in its own classes
        cause = exc.__cause__ or exc.__context__
        if type(exc).__module__.startswith(("s3transfer", "boto3")) or isinstance(cause, (BotoCoreError, ClientError)):
            raise error_class(f"{what}: {describe(cause if isinstance(cause, (BotoCoreError, ClientError)) else exc)}") from exc
        raise

"""``azblob://`` destinations (Azure Blob Storage): ``azblob://<container>/<path>``.

``key`` is the storage account name, ``secret`` its access key (Shared Key auth). The service endpoint is
``VIDMILL_AZURE_BLOB_ENDPOINT`` with ``{account}`` filled in (``https://{account}.blob.core.windows.net`` by
default; Azurite or a sovereign cloud otherwise). Blobs go up as block blobs in parallel blocks; a block
blob changes only when its block list is committed at the end, so no half-written blob is ever visible
under its final name. ``cache_control`` and the Content-Type are set on every blob; ``storage_class`` is
the access tier (HOT, COOL, COLD, ARCHIVE). ``permissions`` (an S3 ACL) does not apply: Azure sets public
access per container. The SDK retries transient failures (``upload_max_attempts``) with backoff.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import (AzureError, ClientAuthenticationError, HttpResponseError, ResourceNotFoundError,
                                   ServiceRequestError, ServiceResponseError)
from azure.storage.blob import BlobServiceClient, ContentSettings, StandardBlobTier

from vidmill.destinations import Landed, Location, OutputFile, Target, content_type, upload_order
from vidmill.errors import StorageError, UrlRefused
from vidmill.net.s3 import plain_http
from vidmill.net.ssrf import check_url

SCHEMES = ("azblob",)
TIERS = {"HOT": StandardBlobTier.HOT, "COOL": StandardBlobTier.COOL, "COLD": StandardBlobTier.COLD,
         "ARCHIVE": StandardBlobTier.ARCHIVE}
_CODES = {
    "AuthenticationFailed": "the storage refused the signature (wrong account key)",
    "AuthorizationFailure": "access denied: the key may not write here",
    "AuthorizationPermissionMismatch": "access denied: the key may not write here",
    "ContainerNotFound": "the container does not exist",
    "ResourceNotFound": "the account or container does not exist",
    "InvalidResourceName": "the container or blob name is not valid",
    "AccountIsDisabled": "the storage account is disabled",
}


def _account_url(target: Target, settings: Any) -> str:
    if not target.key or not target.secret:
        raise StorageError("azblob destination needs key (the storage account name) and secret (its access key)")
    if not target.key.isalnum() or not target.key.islower() or not 3 <= len(target.key) <= 24:
        raise StorageError("azblob key must be a storage account name (3-24 lowercase letters and digits)")
    try:
        base64.b64decode(target.secret, validate=True)
    except (binascii.Error, ValueError):
        raise StorageError("azblob secret must be the storage account's access key (base64)") from None
    url = settings.azure_blob_endpoint.format(account=target.key).rstrip("/")
    parts = urlsplit(url)
    scheme = "http" if plain_http(settings, parts.hostname or "", parts.port) else "https"
    if parts.scheme != scheme:
        raise StorageError(f"the Azure endpoint must use {scheme} (see VIDMILL_STORAGE_PLAIN_HTTP_HOSTS)")
    resolved = check_url(url + "/", allow_private=settings.allow_private_networks)
    if scheme == "https":
        return url  # the certificate binds the name: no rebinding to another host
    ip = f"[{resolved.ip}]" if ":" in resolved.ip else resolved.ip
    return f"http://{ip}:{resolved.port}{parts.path}"


def _container(location: Location, key: str) -> tuple[str, str]:
    # azblob://<container>/<path>: the URL's host is the container, the key is the blob name
    return location.host, key


def vet(target: Target, location: Location, *, settings: Any) -> None:
    _account_url(target, settings)
    _tier(target)


def _tier(target: Target) -> StandardBlobTier | None:
    if not target.storage_class:
        return None
    tier = TIERS.get(target.storage_class.upper())
    if tier is None:
        raise StorageError(f"azblob storage_class must be one of {', '.join(TIERS)}, not {target.storage_class}")
    return tier


@contextmanager
def _map_errors(what: str) -> Iterator[None]:
    try:
        yield
    except UrlRefused as exc:
        raise StorageError(f"{what}: {exc.message}") from exc
    except (ClientAuthenticationError, ResourceNotFoundError, HttpResponseError) as exc:
        code = getattr(exc, "error_code", None) or ""
        status = getattr(exc, "status_code", None)
        words = _CODES.get(str(code)) or {403: "access denied", 404: "not found"}.get(status, "the storage refused")
        raise StorageError(f"{what}: {words} ({code or 'HTTP'}{f', HTTP {status}' if status else ''})") from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise StorageError(f"{what}: cannot reach the storage ({type(exc).__name__})") from exc
    except AzureError as exc:
        raise StorageError(f"{what}: storage client error ({type(exc).__name__})") from exc


def put(pairs: list[tuple[OutputFile, str]], target: Target, location: Location, *, settings: Any,
        cancel: threading.Event | None = None) -> list[Landed]:
    container = location.host
    where = f"azblob destination {target.key}/{container}"
    with _map_errors(f"saving to {where} failed"):
        account_url = _account_url(target, settings)
        tier = _tier(target)
        part = int(getattr(settings, "upload_part_size", 8 * 1024**2))
        timeout = float(getattr(settings, "storage_timeout", 60.0))
        service = BlobServiceClient(
            account_url=account_url, credential={"account_name": target.key, "account_key": target.secret},
            max_single_put_size=part, max_block_size=part, retry_total=int(getattr(settings, "upload_max_attempts", 4)),
            connection_timeout=timeout, read_timeout=timeout,
        )
    concurrency = int(getattr(settings, "upload_concurrency", 4))

    def upload(pair: tuple[OutputFile, str]) -> None:
        if cancel is not None and cancel.is_set():
            raise StorageError("upload cancelled")
        output, key = pair
        with _map_errors(f"saving {output.name} to {where} failed"):
            blob = service.get_blob_client(container, key)
            settings_ = ContentSettings(content_type=content_type(output.name), cache_control=target.cache_control)
            with open(output.path, "rb") as data:
                blob.upload_blob(data, overwrite=True, content_settings=settings_, standard_blob_tier=tier,
                                 max_concurrency=concurrency)

    ordered = upload_order(pairs)
    media = [p for p in ordered if not p[0].name.lower().endswith((".m3u8", ".mpd"))]
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(upload, media))
        for pair in ordered[len(media):]:
            upload(pair)
    finally:
        service.close()
    return [Landed(name=o.name, url=location.url_for(k), size=o.path.stat().st_size,
                   storage={"type": "azblob", "account": target.key, "container": container, "key": k})
            for o, k in pairs]

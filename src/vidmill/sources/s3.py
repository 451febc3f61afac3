"""``s3://`` sources: ``s3://[key:secret@]<endpoint>[:port]/<bucket>/<key>``, credentials percent-encoded.

Without credentials the object is read unsigned (a public object). The download is ranged and parallel
(s3transfer) into ``dest.part``, renamed when complete; the size limit is checked on the object's size
before a byte is read. Presigned https URLs are ``http`` sources, not this module.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from vidmill.errors import SourceError, SourceTooLarge, UrlRefused
from vidmill.net import s3 as s3net
from vidmill.sources.result import FetchResult

SCHEMES = ("s3",)


def _parse(url: str) -> tuple[s3net.Endpoint, str, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("source URL is not a valid s3:// URL") from None
    bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
    if not parts.hostname or not bucket or not key or parts.query or parts.fragment:
        raise UrlRefused("source must look like s3://[key:secret@]<endpoint>/<bucket>/<key>")
    endpoint = s3net.Endpoint(parts.hostname.lower(), port,
                              key=unquote(parts.username) if parts.username else None,
                              secret=unquote(parts.password) if parts.password else None)
    return endpoint, bucket, key


def vet(url: str, *, settings: Any) -> None:
    endpoint, _, _ = _parse(url)
    s3net.endpoint_url(endpoint, settings)


def fetch(url: str, dest: Path, *, settings: Any, cancel: threading.Event | None = None,
          project_id: int | None = None) -> FetchResult:
    endpoint, bucket, key = _parse(url)
    what = f"source download from {endpoint.host}/{bucket} failed"
    part = Path(dest).with_suffix(".part")
    with s3net.map_errors(SourceError, what):
        client = s3net.client(endpoint, settings)
    try:
        with s3net.map_errors(SourceError, what):
            head = client.head_object(Bucket=bucket, Key=key)
        size = int(head.get("ContentLength") or 0)
        if size > settings.max_source_bytes:
            raise SourceTooLarge(f"source is {size} bytes, over the limit of {settings.max_source_bytes} bytes")

        def progress(_n: int) -> None:
            if cancel is not None and cancel.is_set():
                raise SourceError("download cancelled")

        part.parent.mkdir(parents=True, exist_ok=True)
        with s3net.map_errors(SourceError, what):
            client.download_file(bucket, key, str(part), Config=s3net.transfer_config(settings), Callback=progress)
        got = part.stat().st_size
        if got != size:
            raise SourceError(f"{what}: got {got} of {size} bytes")
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        client.close()
    return FetchResult(path=Path(dest), size=size, content_type=head.get("ContentType"))

"""``s3://`` (any S3-compatible endpoint) and ``b2://`` (Backblaze B2's S3-compatible API) destinations.

URL: ``s3://<endpoint>[:port]/<bucket>/<key or folder/>`` (Qencode's form); credentials in ``key`` /
``secret``. Each object is written with ``permissions`` as its canned ACL (when given; private by default),
``storage_class``, ``cache_control`` and a Content-Type from its name. Files above the part size go up in
parallel multipart uploads; S3 makes an object visible only when its upload completes, and a failed
multipart upload is aborted, so no half-written object is ever left under its final name. Transient
failures (connection errors, 5xx, throttling) are retried by botocore's standard retry mode with backoff.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vidmill.destinations import Landed, Location, OutputFile, Target, content_type, upload_order
from vidmill.errors import StorageError
from vidmill.net import s3 as s3net

SCHEMES = ("s3", "b2")


def _endpoint(target: Target, location: Location) -> s3net.Endpoint:
    return s3net.Endpoint(location.host, location.port, key=target.key or location.username,
                          secret=target.secret or location.password)


def _split(location: Location, key: str) -> tuple[str, str]:
    bucket, _, rest = key.partition("/")
    if not bucket or not rest:
        raise StorageError(f"{location.scheme} destination needs {location.scheme}://<endpoint>/<bucket>/<path>")
    return bucket, rest


def vet(target: Target, location: Location, *, settings: Any) -> None:
    # a folder URL names at least its bucket; a file URL its bucket and the object's key
    if not location.path or (not location.folder and "/" not in location.path):
        raise StorageError(f"{location.scheme} destination needs {location.scheme}://<endpoint>/<bucket>/<path>")
    s3net.endpoint_url(_endpoint(target, location), settings)


def put(pairs: list[tuple[OutputFile, str]], target: Target, location: Location, *, settings: Any,
        cancel: threading.Event | None = None) -> list[Landed]:
    splits = [_split(location, key) for _, key in pairs]
    where = f"{location.scheme} destination {location.host}/{splits[0][0]}"
    with s3net.map_errors(StorageError, f"saving to {where} failed"):
        client = s3net.client(_endpoint(target, location), settings)
    config = s3net.transfer_config(settings)
    # No ACL header unless asked: buckets with ACLs disabled (AWS's default since 2023) and B2 refuse
    # most of them, and objects are private by default anyway.
    extra_base = {"ACL": target.permissions} if target.permissions else {}
    if target.storage_class:
        extra_base["StorageClass"] = target.storage_class
    if target.cache_control:
        extra_base["CacheControl"] = target.cache_control

    def upload(pair: tuple[OutputFile, str]) -> None:
        if cancel is not None and cancel.is_set():
            raise StorageError("upload cancelled")
        output, key = pair
        bucket, object_key = _split(location, key)
        extra = {**extra_base, "ContentType": content_type(output.name)}
        with s3net.map_errors(StorageError, f"saving {output.name} to {where} failed"):
            client.upload_file(str(output.path), bucket, object_key, ExtraArgs=extra, Config=config)

    ordered = upload_order(pairs)
    media = [p for p in ordered if not p[0].name.lower().endswith((".m3u8", ".mpd"))]
    playlists = ordered[len(media):]
    try:
        if len(media) > 1:
            with ThreadPoolExecutor(max_workers=int(getattr(settings, "upload_concurrency", 4))) as pool:
                list(pool.map(upload, media))
        else:
            for pair in media:
                upload(pair)
        for pair in playlists:
            upload(pair)
    finally:
        client.close()
    kind = "b2" if location.scheme == "b2" else "s3"
    return [
        Landed(name=output.name, url=location.url_for(key), size=output.path.stat().st_size,
               storage={"type": kind, "host": location.netloc, "bucket": bucket, "key": object_key})
        for (output, key), (bucket, object_key) in zip(pairs, splits)
    ]

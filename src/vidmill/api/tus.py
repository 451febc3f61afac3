"""Direct uploads over TUS 1.0.0 at ``<PUBLIC_URL>/v1/upload_file/<task_token>`` (``create_task``'s upload_url).

The protocol is tuspyserver's (``create_tus_router`` mounted with the task token as a path parameter). Around it,
one small ASGI layer (:class:`UploadPolicy`) adds what vidmill decides and what the library gets wrong
(``../shared/FACTS.md``, "TUS server"):

- the token must be a task's; creating an upload needs a task that has not started; the upload's bytes go to
  its project's folder, and HEAD/PATCH/DELETE only reach uploads made with that same token;
- size limit and quota are checked at creation (the library's ``pre_create`` hook; it only checks its own
  global maximum, and only during PATCH); deferred lengths, concatenation and data sent with the creation are
  refused (so the declared length is the size that was vetted);
- the ``Location`` of a new upload is rebuilt from ``PUBLIC_URL`` (the library writes the literal text
  ``{task_token}`` into it); POSTs get default ``filename``/``filetype`` metadata (without both the library's
  HEAD answers 400: tuspy 0.2.5, the Qencode SDK's uploader, sends none and tus-js-client only ``filename``);
- ``Upload-Expires`` is vidmill's expiry (uploads are deleted by ``core.uploads.Janitor``: the library never
  deletes), an expired upload answers 410 before the library sees it; each PATCH's new offset is recorded, and
  the completion hook only marks the record complete (the last PATCH must not wait on heavy work);
- CORS for browsers (tus-js-client): every origin, PATCH/DELETE allowed, the tus headers exposed; OPTIONS
  answers on the upload URL with or without a trailing slash.

There is no GET: uploaded bytes are never served back; ``tus:<uuid>`` reads them as a task source
(``sources/tus.py``) for the uploading project only.
"""

from __future__ import annotations

import base64
import math
import re
from email.utils import format_datetime
from datetime import timezone
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tuspyserver import create_tus_router

from vidmill.core.uploads import UploadRef, Uploads, UploadTask
from vidmill.errors import LimitExceeded

PREFIX = "/v1/upload_file"
_PATH = re.compile(r"^/v1/upload_file/(?P<token>[^/]*)(?:/(?P<uid>[^/]*))?/?$")
_TOKEN = re.compile(r"^[0-9a-fA-F]{32}$")
_UID = re.compile(r"^[0-9a-f]{32}$")
TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,expiration,termination"  # what vidmill lets through of the library's list
EXPOSED = ["Location", "Upload-Offset", "Upload-Length", "Upload-Expires", "Upload-Metadata", "Tus-Resumable",
           "Tus-Version", "Tus-Extension", "Tus-Max-Size"]
DEFAULT_METADATA = {"filename": "upload", "filetype": "application/octet-stream"}
_TASK, _UUID, _REF = "vidmill_upload_task", "vidmill_upload_uuid", "vidmill_upload_ref"


def mount(app: FastAPI, runtime) -> None:
    """Serve TUS under ``/v1/upload_file/`` in ``app``: outermost, so its own CORS answers preflights."""
    app.add_middleware(TusGate, tus_app=build(runtime.uploads, runtime.settings))


class TusGate:
    """Hands ``/v1/upload_file/...`` to the TUS app, everything else to the main app."""

    def __init__(self, app: ASGIApp, tus_app: ASGIApp):
        self.app, self.tus_app = app, tus_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"] == PREFIX or scope["path"].startswith(PREFIX + "/")):
            await self.tus_app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def build(uploads: Uploads, settings) -> ASGIApp:
    """The TUS app: CORS → UploadPolicy → tuspyserver's router."""

    async def pre_create_dep(request: Request):
        async def pre_create(metadata: dict, info: dict) -> None:
            task: UploadTask = request.state.vidmill_upload_task
            if info.get("size") is None:
                raise HTTPException(400, "Upload-Length is required (deferred lengths are not supported)")
            try:
                ref = await run_in_threadpool(uploads.create, task, int(info["size"]), metadata.get("filename"))
            except LimitExceeded as exc:
                raise HTTPException(413, exc.message)
            setattr(request.state, _UUID, ref.uuid)
            setattr(request.state, _REF, ref)

        return pre_create

    async def file_dep(request: Request):
        def where(_metadata: dict) -> dict:
            task: UploadTask | None = getattr(request.state, _TASK, None)
            if task is None:  # only UploadPolicy's requests reach the library
                raise HTTPException(404)
            out = {"files_dir": str(uploads.project_dir(task.project_id))}
            uid = getattr(request.state, _UUID, None)
            if uid:
                out["uid"] = uid  # the id the record was made with in pre_create
            return out

        return where

    async def on_complete(file_path: str, _metadata: dict) -> None:
        # runs inside the last PATCH, before its 204: only mark the record (a quick write), hand nothing heavy here
        await run_in_threadpool(uploads.mark_complete, Path(file_path).name)

    router = create_tus_router(
        prefix=PREFIX + "/{task_token}",
        files_dir=str(uploads.root),
        max_size=settings.upload_max_bytes,
        days_to_keep=math.ceil(settings.upload_ttl_seconds / 86400) + 1,  # ours is shorter: UploadPolicy enforces it
        on_upload_complete=on_complete,
        pre_create_dep=pre_create_dep,
        file_dep=file_dep,
        tags=["TUS uploads"],
    )
    inner = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    inner.include_router(router)
    policy = UploadPolicy(inner, uploads, settings.public_url)
    return CORSMiddleware(policy, allow_origins=["*"], allow_methods=["POST", "HEAD", "PATCH", "DELETE", "OPTIONS"],
                          allow_headers=["*"], expose_headers=EXPOSED, max_age=3600)


def _http_date(ref: UploadRef) -> str:
    return format_datetime(ref.expires_at.replace(tzinfo=timezone.utc), usegmt=True)


def _with_default_metadata(raw: str) -> str:
    """``Upload-Metadata`` with ``filename``/``filetype`` added when the client sent none."""
    keys = {item.strip().split(" ", 1)[0] for item in raw.split(",") if item.strip()}
    extra = [f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in DEFAULT_METADATA.items() if k not in keys]
    return ",".join([raw] + extra if raw.strip() else extra)


class UploadPolicy:
    """vidmill's rules around the library (see the module docstring)."""

    def __init__(self, app: ASGIApp, uploads: Uploads, public_url: str):
        self.app, self.uploads, self.public_url = app, uploads, public_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = (headers.get("x-http-method-override") or scope["method"]).upper()  # the library honours it too
        m = _PATH.match(scope["path"])
        if m is None or not _TOKEN.match(m["token"]) or (m["uid"] and not _UID.match(m["uid"])):
            return await _answer(send, 404, "no such upload URL")
        token, uid = m["token"].lower(), m["uid"] or None
        if method == "OPTIONS":  # capabilities: the library answers them on the collection URL with a slash only
            scope = {**scope, "path": f"{PREFIX}/{token}/", "raw_path": f"{PREFIX}/{token}/".encode()}
            return await self.app(scope, receive, self._rewrite(send, method=method, token=token))
        task = await run_in_threadpool(self.uploads.task, token)
        if task is None:
            return await _answer(send, 404, "task token not found")
        state = scope.setdefault("state", {})
        state[_TASK] = task
        path = f"{PREFIX}/{token}" + (f"/{uid}" if uid else "")
        scope = {**scope, "path": path, "raw_path": path.encode()}
        if uid is None:
            if method != "POST":
                return await _answer(send, 405, "use POST to create an upload")
            if task.status != "created":
                return await _answer(send, 403, "this task has started already: create a new task to upload")
            if "upload-concat" in headers or "upload-defer-length" in headers:
                return await _answer(send, 400, "concatenation and deferred lengths are not supported")
            if int(headers.get("content-length") or 0) > 0 or "transfer-encoding" in headers:
                return await _answer(send, 400, "send the bytes with PATCH after creating the upload")
            meta = _with_default_metadata(headers.get("upload-metadata", ""))
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"upload-metadata"]
            scope["headers"].append((b"upload-metadata", meta.encode("latin-1")))
            return await self.app(scope, receive, self._rewrite(send, method=method, token=token, state=state))
        ref = await run_in_threadpool(self.uploads.get, uid)
        if ref is None or ref.deleted or ref.task_id != task.id or ref.project_id != task.project_id:
            return await _answer(send, 404, "no such upload")
        if ref.expired():
            return await _answer(send, 410, "this upload has expired")
        if method == "PATCH":
            await run_in_threadpool(self.uploads.trim_unrecorded_tail, ref)
        await self.app(scope, receive, self._rewrite(send, method=method, token=token, ref=ref))

    def _rewrite(self, send: Send, *, method: str, token: str, state: dict | None = None,
                 ref: UploadRef | None = None) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                hdrs = [(k, v) for k, v in message.get("headers", [])]
                names = {k.lower() for k, _ in hdrs}
                current = ref or (state or {}).get(_REF)
                drop = set()
                add = []
                if method == "POST" and status == 201 and current is not None:
                    drop.add(b"location")
                    add.append((b"location", f"{self.public_url}{PREFIX}/{token}/{current.uuid}".encode()))
                if current is not None and (b"upload-expires" in names or method in ("POST", "HEAD", "PATCH")):
                    drop.add(b"upload-expires")
                    add.append((b"upload-expires", _http_date(current).encode()))
                if b"tus-extension" in names:
                    drop.add(b"tus-extension")
                    add.append((b"tus-extension", EXTENSIONS.encode()))
                if method == "PATCH" and status == 204 and ref is not None:
                    offset = dict((k.lower(), v) for k, v in hdrs).get(b"upload-offset")
                    if offset and offset.isdigit():
                        await run_in_threadpool(self.uploads.record_offset, ref.uuid, int(offset))
                if method == "DELETE" and status == 204 and ref is not None:
                    await run_in_threadpool(self.uploads.mark_deleted, ref.uuid)
                message = {**message, "headers": [(k, v) for k, v in hdrs if k.lower() not in drop] + add}
            await send(message)

        return wrapped


async def _answer(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"tus-resumable", TUS_VERSION.encode()), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})

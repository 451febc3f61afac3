"""vidmill's own output storage, served at unguessable URLs (``/files/<id>/<name>``)."""

from __future__ import annotations

import stat
from email.utils import parsedate_to_datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from vidmill.errors import StorageError
from vidmill.destinations import content_type  # one table: .m3u8 .mpd .ts .m4s .mp4 .webm ...
from vidmill.destinations.local import safe_join

router = APIRouter(tags=["files"])


@router.get("/files/{path:path}", summary="Download an output")
@router.head("/files/{path:path}", include_in_schema=False)
async def get_file(path: str, request: Request):
    root = request.app.state.runtime.settings.files_dir
    try:
        target = safe_join(root, path)
        st = target.stat()
    except (StorageError, OSError, ValueError):  # refused, missing, or a name the OS cannot even look up
        raise HTTPException(status_code=404, detail="not found")
    if not stat.S_ISREG(st.st_mode):
        raise HTTPException(status_code=404, detail="not found")
    media_type = content_type(target.name)
    return _File(target, media_type=media_type, stat_result=st,
                 headers={"Cache-Control": "public, max-age=31536000, immutable"})


class _File(FileResponse):
    """Starlette's FileResponse plus what RFC 9110 asks of an origin server and it leaves out: a Range in a unit
    other than bytes is ignored (§14.2: the whole file, not a 400), and If-None-Match / If-Modified-Since are
    evaluated (§13.2.1: 304 Not Modified for a player revalidating what it has)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        wanted = headers.get("range")
        if wanted is not None and not wanted.strip().lower().startswith("bytes="):
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]}
        if self._not_modified(headers):
            kept = {k: self.headers[k] for k in ("etag", "last-modified", "cache-control") if k in self.headers}
            await Response(status_code=304, headers=kept)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _not_modified(self, request: Headers) -> bool:
        etag = self.headers.get("etag", "")
        tags = request.get("if-none-match")
        if tags is not None:  # takes precedence over If-Modified-Since (§13.2.2); compared weakly (§13.1.2)
            ours = etag.removeprefix("W/")
            return any(t.strip() == "*" or t.strip().removeprefix("W/") == ours for t in tags.split(","))
        since, modified = request.get("if-modified-since"), self.headers.get("last-modified")
        if since is None or modified is None:
            return False
        try:
            return parsedate_to_datetime(modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):  # a date that does not parse is ignored (§13.1.3)
            return False

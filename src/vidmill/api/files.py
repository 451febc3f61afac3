"""vidmill's own output storage, served at unguessable URLs (``/files/<id>/<name>``)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from vidmill.errors import StorageError
from vidmill.destinations.local import safe_join

router = APIRouter(tags=["files"])

MEDIA_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".json": "application/json",
               ".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml"}


@router.get("/files/{path:path}", summary="Download an output")
@router.head("/files/{path:path}", include_in_schema=False)
async def get_file(path: str, request: Request):
    root = request.app.state.runtime.settings.files_dir
    try:
        target = safe_join(root, path)
    except StorageError:
        raise HTTPException(status_code=404, detail="not found")
    if not target.is_file():
        raise HTTPException(status_code=404, detail="not found")
    media_type = MEDIA_TYPES.get(target.suffix.lower(), "application/octet-stream")
    return FileResponse(target, media_type=media_type, headers={"Cache-Control": "public, max-age=31536000, immutable"})

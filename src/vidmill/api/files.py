"""vidmill's own output storage, served at unguessable URLs (``/files/<id>/<name>``)."""

from __future__ import annotations

import stat

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

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
    return FileResponse(target, media_type=media_type, stat_result=st,
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})

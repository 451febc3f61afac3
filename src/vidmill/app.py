"""The ASGI app: every dialect's router, health, files, and the runtime behind them."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from vidmill import __version__
from vidmill.api import deliveries, files, octet, qencode, transparent, tus
from vidmill.config import Settings
from vidmill.engine import ffmpeg as ffmpeg_bin
from vidmill.runtime import Runtime

log = logging.getLogger("vidmill")


class CollapseSlashes:
    """Serve ``//v1/status`` as ``/v1/status``: the Qencode SDK builds that URL, and a redirect breaks POST."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("//"):
            scope = dict(scope)
            scope["path"] = "/" + scope["path"].lstrip("/")
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        rt.start()
        if rt.generated_key:
            print(f"vidmill: created the default project; its API key (shown once): {rt.generated_key}", flush=True)
        try:
            yield
        finally:
            rt.stop()

    app = FastAPI(title="vidmill", version=__version__, lifespan=lifespan,
                  description="Self-hosted video transcoding, wire-compatible with Qencode v1.")
    app.state.runtime = rt
    app.add_middleware(CollapseSlashes)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
                       allow_headers=["*"], expose_headers=["Content-Length", "Content-Range", "Accept-Ranges"])
    tus.mount(app, rt)  # after the CORS above: TUS answers its own preflights (PATCH, tus headers)
    app.include_router(qencode.router)
    app.include_router(octet.router)  # Octet and TransparentEdge answer errors in their own shapes (route_class)
    app.include_router(transparent.router)
    app.include_router(files.router)
    app.include_router(deliveries.router)
    app.add_exception_handler(deliveries.Refused, deliveries.refused_handler)
    app.add_exception_handler(qencode.QencodeError, qencode.qencode_error_handler)
    app.add_exception_handler(Exception, qencode.internal_error_handler)

    @app.get("/healthz", tags=["health"], summary="200 when the API, database and engine are usable")
    def healthz():
        # anyone may ask: say what is broken, keep the details (paths, DB errors) in the server log
        checks = {}
        try:
            rt.db.ping()
            checks["database"] = "ok"
        except Exception:
            log.exception("health: database unreachable")
            checks["database"] = "error"
        try:
            ffmpeg_bin.ffmpeg_exe()
            checks["ffmpeg"] = "ok"
        except Exception:
            log.exception("health: FFmpeg not usable")
            checks["ffmpeg"] = "error"
        checks["workers"] = ("ok" if rt.executor.alive() else "error") if rt.start_workers else "off"
        healthy = "error" not in checks.values()
        return JSONResponse({"status": "ok" if healthy else "unhealthy", "version": __version__, **checks},
                            status_code=200 if healthy else 503)

    return app

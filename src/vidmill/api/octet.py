"""Octet v0 dialect: ``POST /v0/jobs/create`` and (beyond the seed) ``GET /v0/jobs/{job_id}``.

Auth: ``Authorization: Bearer <API key>``; a key sees only its project's jobs. Every answer of these
routes is JSON; a refused request is ``{"error": "<why>"}`` with a 4xx status (the seed's "or" shape).
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from vidmill.api.dialects import (AuthInvalid, AuthMissing, BodyError, bearer_project, error_route, json_object,
                                  read_body, vet_query)
from vidmill.api.octet_render import render_job
from vidmill.api.octet_request import parse_job, to_query
from vidmill.core.query import check_supported
from vidmill.errors import NotFound, QueryError, UnsupportedField

log = logging.getLogger("vidmill.api.octet")
DIALECT = "octet"
ALLOWED_FIELDS = frozenset({"no_audio", "constant_qp", "constant_bitrate", "hardware", "hardware_preset"})


class OctetError(Exception):
    """A request Octet refuses: ``{"error": message}`` with ``status``."""

    expected = True

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def render_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, OctetError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    if isinstance(exc, AuthMissing):
        return JSONResponse({"error": "missing API key: send Authorization: Bearer <key>"}, status_code=401)
    if isinstance(exc, AuthInvalid):
        return JSONResponse({"error": "invalid API key"}, status_code=401)
    if isinstance(exc, (BodyError, QueryError)):
        return JSONResponse({"error": exc.message}, status_code=400)
    if isinstance(exc, NotFound):
        return JSONResponse({"error": "job not found"}, status_code=404)
    if isinstance(exc, RequestValidationError):
        return JSONResponse({"error": "invalid request"}, status_code=400)
    return JSONResponse({"error": "internal server error"}, status_code=500)


def _octet_field(message: str) -> str:
    """A core field path in Octet's words: source -> input.url, format[i].destination -> outputs[i].dest_path."""
    message = re.sub(r"^format\[(\d+)\]\.destination(\[\d+\])?", r"outputs[\1].dest_path", message)
    return (message.replace("format[", "outputs[").replace("source:", "input.url:", 1)
            .replace("callback_url:", "callback:", 1))


router = APIRouter(tags=["Octet v0"], route_class=error_route(render_error))


def _create(request: Request, project, body: bytes) -> JSONResponse:
    rt = request.app.state.runtime
    job = parse_job(json_object(body))
    query, data = to_query(job, s3_endpoint=rt.settings.octet_s3_endpoint or None)
    try:
        check_supported(query, allow=ALLOWED_FIELDS)
    except UnsupportedField as exc:
        raise OctetError(_octet_field(exc.message)) from None
    try:
        vet_query(query, rt.settings)
    except QueryError as exc:
        raise OctetError(_octet_field(exc.message)) from None
    view = rt.tasks.submit(project, query, dialect=DIALECT, dialect_data=data)
    rt.executor.submit()
    rt.deliverer.wake.set()
    return JSONResponse({"job_id": view.token})


@router.post("/v0/jobs/create", summary="Create a transcoding job (Octet v0)")
async def create_job(request: Request):
    project = await run_in_threadpool(bearer_project, request)
    body = await read_body(request)
    return await run_in_threadpool(_create, request, project, body)


@router.get("/v0/jobs/{job_id}", summary="A job's status and outputs (vidmill addition to Octet v0)")
async def get_job(request: Request, job_id: str):
    project = await run_in_threadpool(bearer_project, request)
    if len(job_id) != 32 or not all(c in "0123456789abcdef" for c in job_id):
        raise NotFound("job not found")
    view = await run_in_threadpool(request.app.state.runtime.tasks.find, project, DIALECT, job_id)
    return JSONResponse(render_job(view))

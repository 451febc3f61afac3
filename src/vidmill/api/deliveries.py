"""vidmill's own routes for a task's callback deliveries: the log, and a redelivery on demand.

Authenticated with the project's API key (``Authorization: Bearer <key>`` or ``X-Api-Key``); a task of
another project is "not found". Answers are JSON with ordinary HTTP statuses (this is no vendor's dialect).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vidmill.config import API_KEY_RE
from vidmill.errors import Conflict, NotFound

router = APIRouter(prefix="/vidmill/v1", tags=["vidmill: callback deliveries"])

TokenPath = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{32}$", description="the task token")]


class Attempt(BaseModel):
    at: str
    duration_ms: float
    http_status: int | None
    error: str | None


class Delivery(BaseModel):
    id: int
    event: str
    channel: str
    target: str
    state: str
    attempts: int
    created_at: str
    next_try: str | None
    retry_until: str
    delivered_at: str | None
    given_up_at: str | None
    last_status: int | None
    last_error: str | None
    log: list[Attempt]


class ApiError(BaseModel):
    error: str


def _project_id(request: Request, authorization: str | None, x_api_key: str | None) -> int:
    key = x_api_key or ""
    if not key and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key or not API_KEY_RE.match(key):
        raise Refused(401, "an API key is required (Authorization: Bearer <key> or X-Api-Key)")
    try:
        return request.app.state.runtime.projects.by_key(key).id
    except NotFound:
        raise Refused(401, "API key not found")


class Refused(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


async def refused_handler(request: Request, exc: Refused) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status)


ERRORS = {401: {"model": ApiError, "description": "no or unknown API key"},
          404: {"model": ApiError, "description": "no such task (or delivery) in this project"}}


@router.get("/tasks/{task_token}/deliveries", response_model=list[Delivery], responses=ERRORS,
            summary="A task's callback deliveries, oldest first, each with every attempt")
def list_deliveries(request: Request, task_token: TokenPath,
                    authorization: Annotated[str | None, Header()] = None,
                    x_api_key: Annotated[str | None, Header()] = None):
    rt = request.app.state.runtime
    project_id = _project_id(request, authorization, x_api_key)
    try:
        return rt.tasks.deliveries(task_token.lower(), retry_horizon=rt.settings.callback_retry_horizon,
                                   project_id=project_id)
    except NotFound as exc:
        raise Refused(404, exc.message)


@router.post("/tasks/{task_token}/deliveries/{delivery_id}/redeliver", response_model=Delivery,
             responses={**ERRORS, 409: {"model": ApiError, "description": "the dialect sends nothing for this event"}},
             summary="Send one delivery again now (it keeps its place in the task's order)")
def redeliver(request: Request, task_token: TokenPath, delivery_id: Annotated[int, Path(ge=1, le=2**62)],
              authorization: Annotated[str | None, Header()] = None,
              x_api_key: Annotated[str | None, Header()] = None):
    rt = request.app.state.runtime
    project_id = _project_id(request, authorization, x_api_key)
    token = task_token.lower()
    try:
        rt.tasks.redeliver(token, delivery_id, project_id=project_id)
    except NotFound as exc:
        raise Refused(404, exc.message)
    except Conflict as exc:
        raise Refused(409, exc.message)
    rt.deliverer.wake.set()
    log = rt.tasks.deliveries(token, retry_horizon=rt.settings.callback_retry_horizon, project_id=project_id)
    return next(d for d in log if d["id"] == delivery_id)

"""Qencode v1 dialect: parse the vendor's form posts into core calls, render core views back.

Every answer is HTTP 200 with an integer ``error`` (0 on success), as Qencode's SDKs expect.
"""

from __future__ import annotations

import json
import logging
import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vidmill.api import qencode_schema as schema
from vidmill.api.forms import BadForm, BodyTooLarge, Form, read_form
from vidmill.api.qencode_render import render_status
from vidmill.config import API_KEY_RE
from vidmill.core.query import Query, check_supported, parse_query
from vidmill.api.dialects import vet_query
from vidmill.errors import (Conflict, NotFound, QueryError, QueryMissing, SourceError, UnsupportedField,
                            VidmillError)

log = logging.getLogger("vidmill.api.qencode")
router = APIRouter(tags=["Qencode v1"])

# Qencode error codes (qencode-wire.md), one table.
OK, INTERNAL, BAD_API_KEY, API_KEY_NOT_FOUND, BAD_TOKEN, TOKEN_NOT_FOUND = 0, 1, 2, 3, 4, 5
BAD_PAYLOAD, BAD_PROFILE, PROFILE_NOT_FOUND, BAD_TOKENS, FIELD_REQUIRED, QUERY_REQUIRED = 9, 11, 12, 13, 14, 19

TOKEN_RE = re.compile(r"^[0-9a-fA-F]{32}$")
PROFILE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
TOKENS_FIELD_RE = re.compile(r"^task_tokens(\[\d{0,4}\])?$")  # task_tokens, task_tokens[], task_tokens[0]
MAX_PAYLOAD = 1000


class QencodeError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def ok(**fields) -> JSONResponse:
    return JSONResponse({"error": OK, **fields})


def fail(code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message})


def _rt(request: Request):
    return request.app.state.runtime


async def _form(request: Request) -> Form:
    try:
        return await read_form(request, _rt(request).settings.max_request_bytes)
    except BodyTooLarge:
        raise QencodeError(INTERNAL, f"request body too large (limit {_rt(request).settings.max_request_bytes} bytes)")
    except BadForm as exc:
        raise QencodeError(FIELD_REQUIRED, str(exc))


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise QencodeError(FIELD_REQUIRED, f"{name} field is required")
    return value


def _task_token(form: dict[str, str]) -> str:
    token = _required(form, "task_token")
    if not TOKEN_RE.match(token):
        raise QencodeError(BAD_TOKEN, "task_token did not pass validation")
    return token.lower()


def _payload(form: dict[str, str]) -> str | None:
    payload = form.get("payload")
    if payload is not None and len(payload) > MAX_PAYLOAD:
        raise QencodeError(BAD_PAYLOAD, f"payload value is too long ({len(payload)} > {MAX_PAYLOAD} characters)")
    return payload


def qencode_method(name: str, summary: str, form: type, answer: type):
    """Register ``POST /v1/<name>``: the form is read on the event loop, the handler (which blocks on
    the store and DNS) runs in a worker thread. ``form`` and ``answer`` describe it in /openapi.json."""

    def register(handler):
        async def endpoint(request: Request):
            form = await _form(request)
            return await run_in_threadpool(handler, request, form)

        endpoint.__name__ = name
        router.add_api_route(f"/v1/{name}", endpoint, methods=["POST"], summary=summary, name=name,
                             operation_id=name, openapi_extra=schema.request_body(form),
                             responses=schema.answers(answer))
        return handler

    return register


def _status_url(request: Request) -> str:
    return f"{_rt(request).settings.public_url}/v1/status"


@qencode_method("access_token", "Exchange an API key for a session token", schema.AccessTokenForm,
                schema.AccessTokenAnswer)
def _access_token(request: Request, form: dict[str, str]) -> JSONResponse:
    key = _required(form, "api_key")
    if not API_KEY_RE.match(key):
        raise QencodeError(BAD_API_KEY, "API key did not pass validation")
    rt = _rt(request)
    try:
        project = rt.projects.by_key(key)
    except NotFound:
        raise QencodeError(API_KEY_NOT_FOUND, "API key not found")
    token, expires = rt.projects.new_session(project)
    return ok(token=token, expire=expires.strftime("%Y-%m-%dT%H:%M:%S"))


@qencode_method("create_task", "Create a task token", schema.CreateTaskForm, schema.CreateTaskAnswer)
def _create_task(request: Request, form: dict[str, str]) -> JSONResponse:
    token = _required(form, "token")
    if not TOKEN_RE.match(token):
        raise QencodeError(BAD_TOKEN, "Token did not pass validation")
    rt = _rt(request)
    try:
        project = rt.projects.by_session(token.lower())
    except NotFound:
        raise QencodeError(TOKEN_NOT_FOUND, "Token not found")
    task_token = rt.tasks.create(project)
    return ok(task_token=task_token, upload_url=f"{rt.settings.public_url}/v1/upload_file")


def _vet_urls(rt, query: Query) -> None:
    """Refuse at start time what the SSRF guard would refuse later, so the user hears it at once."""
    try:
        vet_query(query, rt.settings, index_lone_destination=False)
    except QueryError as exc:
        raise QencodeError(FIELD_REQUIRED, exc.message) from None


def _vet_upload(rt, token: str, query: Query) -> None:
    """A ``tus:`` source must be a finished, live upload of the task's own project (checked again at fetch)."""
    if not (query.source or "").lower().startswith("tus:"):
        return
    try:
        project_id = rt.tasks.get(token).project_id
    except NotFound:
        return  # start() answers "Task token not found"
    try:
        rt.uploads.for_source(query.source.split(":", 1)[1], project_id)
    except SourceError as exc:
        raise QencodeError(FIELD_REQUIRED, exc.message)


def _start(request: Request, token: str, query: Query, payload: str | None) -> JSONResponse:
    rt = _rt(request)
    try:
        check_supported(query)
    except UnsupportedField as exc:
        raise QencodeError(FIELD_REQUIRED, exc.message)
    _vet_urls(rt, query)
    _vet_upload(rt, token, query)
    try:
        rt.tasks.start(token, query, payload=payload)
    except NotFound:
        raise QencodeError(TOKEN_NOT_FOUND, "Task token not found")
    except Conflict as exc:
        raise QencodeError(BAD_TOKEN, exc.message)
    rt.executor.submit()
    rt.deliverer.wake.set()  # the queued callback
    return ok(status_url=_status_url(request))


@qencode_method("start_encode2", "Start a task with a query JSON", schema.StartEncode2Form, schema.StartAnswer)
def _start_encode2(request: Request, form: dict[str, str]) -> JSONResponse:
    token = _task_token(form)
    payload = _payload(form)
    try:
        query = parse_query(form.get("query", ""))
    except QueryMissing as exc:
        raise QencodeError(QUERY_REQUIRED, exc.message)
    except QueryError as exc:
        raise QencodeError(FIELD_REQUIRED, exc.message)
    return _start(request, token, query, payload)


@qencode_method("start_encode", "Start a task with stored profiles", schema.StartEncodeForm, schema.StartAnswer)
def _start_encode(request: Request, form: dict[str, str]) -> JSONResponse:
    token = _task_token(form)
    payload = _payload(form)
    raw_profiles = _required(form, "profiles")
    uids = [p.strip() for p in raw_profiles.split(",") if p.strip()]
    if not uids or not all(PROFILE_RE.match(u) for u in uids):
        raise QencodeError(BAD_PROFILE, "Profile field value does not pass validation")
    rt = _rt(request)
    try:
        task = rt.tasks.get(token)
    except NotFound:
        raise QencodeError(TOKEN_NOT_FOUND, "Task token not found")
    try:
        formats = rt.tasks.profile_formats(rt.projects.get(task.project_id), uids)
    except NotFound as exc:
        raise QencodeError(PROFILE_NOT_FOUND, exc.message)
    body: dict = {"format": formats}
    if form.get("uri"):
        body["source"] = form["uri"]
    elif form.get("stitch"):
        try:
            body["stitch"] = json.loads(form["stitch"])
        except ValueError:
            raise QencodeError(FIELD_REQUIRED, "stitch: must be a JSON list of URLs or {url, start_time, duration}")
    else:
        raise QencodeError(FIELD_REQUIRED, "uri field is required")
    if form.get("callback_url"):
        body["callback_url"] = form["callback_url"]
    try:
        query = parse_query(json.dumps({"query": body}))
    except QueryError as exc:
        raise QencodeError(FIELD_REQUIRED, exc.message)
    return _start(request, token, query, payload)


@qencode_method("status", "Status of one or more tasks", schema.StatusForm, schema.StatusAnswer)
def _status(request: Request, form: dict[str, str]) -> JSONResponse:
    raw = [v for k, v in form.items_all if TOKENS_FIELD_RE.match(k)]
    tokens = [t.strip().lower() for value in raw for t in value.split(",") if t.strip()]
    tokens = list(dict.fromkeys(t for t in tokens if TOKEN_RE.match(t)))[:100]
    if not tokens:
        raise QencodeError(BAD_TOKENS, "Task_tokens field value does not pass validation")
    rt = _rt(request)
    # no key, as in Qencode: so it answers for Qencode tasks only; an Octet job id or a TransparentEdge
    # order's token is as unknown here as a token that does not exist
    views = rt.tasks.get_many(tokens, dialect="qencode")
    settings = rt.settings
    return ok(statuses={t: render_status(views[t], settings) for t in tokens if t in views})


async def qencode_error_handler(request: Request, exc: QencodeError) -> JSONResponse:
    return fail(exc.code, exc.message)


async def internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s", request.url.path)
    message = exc.message if isinstance(exc, VidmillError) else "internal server error"
    return fail(INTERNAL, message)

"""TransparentEdge dialect: transcode orders under ``/v1/media/{company_id}/``, and the OAuth2 token exchange.

Companies are vidmill projects (``company_id`` is the project id): a bearer token works only on its own
company's paths. Errors come in Django REST framework's shapes, as TransparentEdge's API answers them:
``{"detail": "..."}`` for auth, permission and not-found, ``{"<field>": ["<message>"]}`` for bad input.

Routes (each also with a trailing slash, as TransparentEdge's curl examples post to ``.../transcode/``):

    POST /v1/oauth2/access_token/                          client_credentials: client_secret = an API key
    GET  /v1/media/{company_id}/transcode                  orders, newest first: [{id, created_on, status}]
    POST /v1/media/{company_id}/transcode                  create: form field ``order`` (JSON) or a JSON body
    GET  /v1/media/{company_id}/transcode/{order_id}       the order detail
    POST /v1/media/{company_id}/transcode/{order_id}/requeue    run its failed jobs again (same order)
    POST /v1/media/{company_id}/transcode/{order_id}/relaunch   a new order with the same request
    GET|POST /v1/media/{company_id}/profiles               profiles: {id, name, settings}
    GET|PUT|PATCH|DELETE /v1/media/{company_id}/profiles/{profile_id}
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from fastapi import APIRouter, Request
from pydantic import ValidationError
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from vidmill.api.dialects import (AuthInvalid, AuthMissing, BodyError, bearer_project, error_route, json_object,
                                  read_body, vet_query)
from vidmill.api.forms import BadForm, BodyTooLarge, read_form
from vidmill.api.transparent_render import render_detail, render_item
from vidmill.api.transparent_request import (ProfileBody, ProfilePatch, parse_order, parse_settings, task_priority,
                                             to_query, validation_error)
from vidmill.config import API_KEY_RE
from vidmill.core.projects import ProjectRef
from vidmill.core.query import Query, check_supported
from vidmill.errors import NotFound, QueryError, UnsupportedField

log = logging.getLogger("vidmill.api.transparent")
DIALECT = "transparent"
_ORDER_ID_RE = re.compile(r"^[0-9]{10}-[0-9]{4}$")
_ID_RE = re.compile(r"^[0-9]{1,9}$")
PERMISSION_DENIED = "You do not have permission to perform this action."


class TransparentError(Exception):
    """An answer in DRF's shape: ``body`` with ``status``."""

    expected = True

    def __init__(self, status: int, body: dict):
        super().__init__(str(body))
        self.status, self.body = status, body


def field_error(field: str | None, message: str) -> TransparentError:
    name = (field or "non_field_errors").split(".", 1)[0].split("[", 1)[0]
    return TransparentError(400, {name: [message]})


def render_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, TransparentError):
        return JSONResponse(exc.body, status_code=exc.status)
    if isinstance(exc, AuthMissing):
        return JSONResponse({"detail": "Authentication credentials were not provided."}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="api"'})
    if isinstance(exc, AuthInvalid):
        return JSONResponse({"detail": "Invalid token."}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'})
    if isinstance(exc, NotFound):
        return JSONResponse({"detail": "Not found."}, status_code=404)
    if isinstance(exc, (QueryError, BodyError)):
        return JSONResponse(field_error(exc.field, exc.message).body, status_code=400)
    if isinstance(exc, RequestValidationError):
        return JSONResponse({"non_field_errors": ["Invalid request."]}, status_code=400)
    return JSONResponse({"detail": "A server error occurred."}, status_code=500)


router = APIRouter(tags=["TransparentEdge"], route_class=error_route(render_error))


def route(path: str, methods: list[str], summary: str):
    """Register ``path`` and ``path/`` (a redirect would turn a POST into a GET)."""

    def register(fn):
        for method in methods:  # one route per method: each gets its own OpenAPI operation id
            router.add_api_route(path, fn, methods=[method], summary=summary,
                                 operation_id=f"transparent_{fn.__name__}_{method.lower()}")
            router.add_api_route(path + "/", fn, methods=[method], include_in_schema=False)
        return fn

    return register


def _rt(request: Request):
    return request.app.state.runtime


async def _company(request: Request, company_id: str) -> ProjectRef:
    project = await run_in_threadpool(bearer_project, request)
    if not _ID_RE.match(company_id) or int(company_id) != project.id:
        raise TransparentError(403, {"detail": PERMISSION_DENIED})
    return project


# --- auth -----------------------------------------------------------------------------------------------
@route("/v1/oauth2/access_token", ["POST"], "OAuth2 client credentials: an API key for a bearer token")
async def access_token(request: Request):
    try:
        form = await read_form(request, _rt(request).settings.max_request_bytes)
    except (BodyTooLarge, BadForm):
        return JSONResponse({"error": "invalid_request"}, status_code=400)
    if form.get("grant_type", "client_credentials") != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    secret = form.get("client_secret", "").strip()
    if not API_KEY_RE.match(secret):
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    rt = _rt(request)
    try:
        project = await run_in_threadpool(rt.projects.by_key, secret)
    except NotFound:
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    token, expires = await run_in_threadpool(rt.projects.new_session, project)
    return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": rt.settings.session_ttl_seconds,
                         "scope": "read write"}, headers={"Cache-Control": "no-store"})


# --- orders ---------------------------------------------------------------------------------------------
@route("/v1/media/{company_id}/transcode", ["GET"], "The company's transcode orders, newest first")
async def list_orders(request: Request, company_id: str):
    project = await _company(request, company_id)
    views = await run_in_threadpool(_rt(request).tasks.list_for, project, DIALECT)
    return JSONResponse([render_item(v) for v in views])


async def _order_body(request: Request) -> dict:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        return json_object(await read_body(request), "order")
    try:
        form = await read_form(request, _rt(request).settings.max_request_bytes)
    except BodyTooLarge:
        raise field_error("order", "request body too large") from None
    except BadForm as exc:
        raise field_error("order", str(exc)) from None
    if "order" not in form:
        raise field_error("order", "This field is required.")
    return json_object(form["order"], "order")


def _new_order_id(rt) -> str:
    for _ in range(20):
        oid = f"{int(time.time())}-{secrets.randbelow(10000):04d}"
        if not rt.tasks.external_id_taken(DIALECT, oid):
            return oid
    raise RuntimeError("no free order id")


def _submit(rt, project: ProjectRef, query: Query, data: dict, priority: int = 0):
    try:
        check_supported(query)
    except UnsupportedField as exc:
        msg = exc.message.replace("format[", "jobs[")
        raise field_error("origin" if (exc.field or "").startswith("source") else "jobs", msg) from None
    try:  # after the support policy: a scheme not supported yet is refused by it, not by a missing module
        vet_query(query, rt.settings, callbacks=data.get("notify_urls") or ())
    except QueryError as exc:
        field = {"source": "origin", "callback_url": "notifications"}.get(exc.field or "", "destinations")
        raise field_error(field, exc.message.replace("source:", "origin:", 1)
                          .replace("callback_url:", "notifications:", 1)) from None
    view = rt.tasks.submit(project, query, dialect=DIALECT, external_id=_new_order_id(rt), dialect_data=data,
                           priority=priority)
    rt.executor.submit()
    rt.deliverer.wake.set()
    return view


def _create(request: Request, project: ProjectRef, body: dict) -> JSONResponse:
    rt = _rt(request)
    order = parse_order(body)
    if any(n.email for n in order.notifications) and not rt.settings.smtp_host:
        raise field_error("notifications", "e-mail notifications need an SMTP server: this vidmill has none "
                                           "configured (VIDMILL_SMTP_HOST)")
    profiles = {}
    for job in order.jobs:
        try:
            p = rt.profiles.get(project, job.profile_id)
        except NotFound:
            raise field_error("jobs", f"profile {job.profile_id} does not exist") from None
        if len(p.formats) != 1:
            raise field_error("jobs", f"profile {job.profile_id} holds {len(p.formats)} outputs; "
                                      "a TransparentEdge job makes one")
        profiles[p.id] = (p.name, p.formats[0])
    query, data = to_query(order, profiles)
    view = _submit(rt, project, query, data, task_priority(order))
    return JSONResponse(render_detail(view), status_code=201)


@route("/v1/media/{company_id}/transcode", ["POST"], "Create a transcode order")
async def create_order(request: Request, company_id: str):
    project = await _company(request, company_id)
    body = await _order_body(request)
    return await run_in_threadpool(_create, request, project, body)


def _order(rt, project: ProjectRef, order_id: str):
    if not _ORDER_ID_RE.match(order_id):
        raise NotFound("order not found")
    return rt.tasks.find(project, DIALECT, order_id, by="external_id")


@route("/v1/media/{company_id}/transcode/{order_id}", ["GET"], "One order, with its jobs and their progress")
async def get_order(request: Request, company_id: str, order_id: str):
    project = await _company(request, company_id)
    view = await run_in_threadpool(_order, _rt(request), project, order_id)
    return JSONResponse(render_detail(view))


def _requeue(request: Request, project: ProjectRef, order_id: str) -> JSONResponse:
    rt = _rt(request)
    view = _order(rt, project, order_id)
    if not rt.jobs.requeue(view.id):
        raise TransparentError(409, {"detail": f"Order {order_id} is still {render_item(view)['status']}; "
                                               "only FINISHED or ERROR orders can be requeued."})
    rt.executor.submit()
    return JSONResponse(render_detail(rt.tasks.find(project, DIALECT, order_id, by="external_id")))


@route("/v1/media/{company_id}/transcode/{order_id}/requeue", ["POST"], "Run an order's failed jobs again")
async def requeue_order(request: Request, company_id: str, order_id: str):
    project = await _company(request, company_id)
    return await run_in_threadpool(_requeue, request, project, order_id)


def _relaunch(request: Request, project: ProjectRef, order_id: str) -> JSONResponse:
    rt = _rt(request)
    old = _order(rt, project, order_id)
    query = Query.model_validate(old.query)
    view = _submit(rt, project, query, dict(old.dialect_data or {}), old.priority)  # the same order again
    return JSONResponse(render_detail(view), status_code=201)


@route("/v1/media/{company_id}/transcode/{order_id}/relaunch", ["POST"], "A new order with the same request")
async def relaunch_order(request: Request, company_id: str, order_id: str):
    project = await _company(request, company_id)
    return await run_in_threadpool(_relaunch, request, project, order_id)


# --- profiles -------------------------------------------------------------------------------------------
def _profile_json(p) -> dict:
    return {"id": p.id, "name": p.name, "settings": p.formats[0] if p.formats else {}}


def _profile_id(profile_id: str) -> int:
    if not _ID_RE.match(profile_id):
        raise NotFound("profile not found")
    return int(profile_id)


@route("/v1/media/{company_id}/profiles", ["GET"], "The company's encoding profiles")
async def list_profiles(request: Request, company_id: str):
    project = await _company(request, company_id)
    profiles = await run_in_threadpool(_rt(request).profiles.list_for, project)
    return JSONResponse([_profile_json(p) for p in profiles])


def _parse(model, data: dict):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


@route("/v1/media/{company_id}/profiles", ["POST"], "Create a profile: {name, settings}")
async def create_profile(request: Request, company_id: str):
    project = await _company(request, company_id)
    body = _parse(ProfileBody, json_object(await read_body(request)))
    settings = parse_settings(body.settings)
    p = await run_in_threadpool(_rt(request).profiles.create, project, body.name, [settings])
    return JSONResponse(_profile_json(p), status_code=201)


@route("/v1/media/{company_id}/profiles/{profile_id}", ["GET"], "One profile")
async def get_profile(request: Request, company_id: str, profile_id: str):
    project = await _company(request, company_id)
    p = await run_in_threadpool(_rt(request).profiles.get, project, _profile_id(profile_id))
    return JSONResponse(_profile_json(p))


@route("/v1/media/{company_id}/profiles/{profile_id}", ["PUT", "PATCH"], "Change a profile's name or settings")
async def update_profile(request: Request, company_id: str, profile_id: str):
    project = await _company(request, company_id)
    pid = _profile_id(profile_id)
    model = ProfileBody if request.method == "PUT" else ProfilePatch
    body = _parse(model, json_object(await read_body(request)))
    settings = parse_settings(body.settings) if body.settings is not None else None
    p = await run_in_threadpool(lambda: _rt(request).profiles.update(
        project, pid, name=body.name, formats=[settings] if settings is not None else None))
    return JSONResponse(_profile_json(p))


@route("/v1/media/{company_id}/profiles/{profile_id}", ["DELETE"], "Delete a profile")
async def delete_profile(request: Request, company_id: str, profile_id: str):
    project = await _company(request, company_id)
    await run_in_threadpool(_rt(request).profiles.delete, project, _profile_id(profile_id))
    return Response(status_code=204)

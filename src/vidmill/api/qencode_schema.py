"""OpenAPI descriptions of the Qencode v1 form methods: each form field and each answer.

The handlers read their forms themselves (``api/forms.py``: bounded, repeated fields, PHP-style names), so
FastAPI cannot infer these; they are declared here, once per method, as pydantic models, and attached to the
routes as ``openapi_extra`` (request bodies) and ``response_model``-free ``responses`` (answers). /docs then
offers real forms, and a generated client sends the fields by name.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TOKEN_PATTERN = r"^[0-9a-fA-F]{32}$"


class _Form(BaseModel):
    model_config = ConfigDict(extra="allow")


class AccessTokenForm(_Form):
    api_key: str = Field(description="The project's API key (8-128 characters of A-Z a-z 0-9 _ - .)",
                         min_length=1)


class CreateTaskForm(_Form):
    token: str = Field(description="The session token from access_token (32 hex digits)", min_length=1)


class StartEncode2Form(_Form):
    task_token: str = Field(description="The task token from create_task (32 hex digits)", min_length=1)
    query: str = Field(description='The task as JSON: {"query": {"source": ..., "format": [...], ...}}',
                       min_length=1)
    payload: str | None = Field(None, description="Up to 1000 characters, returned verbatim in status and "
                                                  "callbacks", max_length=1000)


class StartEncodeForm(_Form):
    task_token: str = Field(description="The task token from create_task (32 hex digits)", min_length=1)
    profiles: str = Field(description="Comma-separated ids of stored profiles", min_length=1)
    uri: str | None = Field(None, description="The source URL (or tus:<id>); required unless stitch is given")
    stitch: str | None = Field(None, description="JSON list of sources to join, instead of uri")
    callback_url: str | None = Field(None, description="Where task callbacks are POSTed")
    payload: str | None = Field(None, description="Up to 1000 characters, returned verbatim", max_length=1000)


class StatusForm(_Form):
    task_tokens: str = Field(description="One or more task tokens, comma-separated (task_tokens[] and "
                                         "task_tokens[N] are read too)", min_length=1)


class _Answer(BaseModel):
    error: int = Field(description="0 on success, else a Qencode error code (1 internal, 2 bad API key, "
                                   "3 API key not found, 4 bad token, 5 token not found, 9 payload too long, "
                                   "11 bad profile, 12 profile not found, 13 bad task_tokens, 14 field "
                                   "required or invalid, 19 query required)")
    message: str | None = Field(None, description="What was wrong (error answers only)")


class AccessTokenAnswer(_Answer):
    token: str | None = Field(None, description="Session token for create_task")
    expire: str | None = Field(None, description="When the session token expires (UTC, ISO 8601)")


class CreateTaskAnswer(_Answer):
    task_token: str | None = Field(None, description="The new task's token")
    upload_url: str | None = Field(None, description="Where to upload a source with TUS")


class StartAnswer(_Answer):
    status_url: str | None = Field(None, description="Where to POST status requests")


class OutputStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    tag: str
    user_tag: str | None = None
    output_format: str
    status: str
    percent: float
    url: str | None = None
    storage: dict[str, Any] | None = None
    bitrate: int | None = None
    duration: str | None = None
    size: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    error: int
    error_description: str | None = None


class Warning_(BaseModel):
    model_config = ConfigDict(title="Warning")
    message: str
    details: str | None = None
    tag: str | None = None


class TaskStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str = Field(description="queued, downloading, encoding, saving, completed or error")
    status_url: str
    percent: float
    error: int
    error_description: str | None = None
    warnings: list[Warning_] = Field(default_factory=list)
    videos: list[OutputStatus] = Field(default_factory=list)
    audios: list[OutputStatus] = Field(default_factory=list)
    images: list[OutputStatus] = Field(default_factory=list)
    texts: list[OutputStatus] = Field(default_factory=list)
    duration: str | None = None
    source_size: str | None = None
    payload: str | None = None


class StatusAnswer(_Answer):
    statuses: dict[str, TaskStatus] | None = Field(None, description="Each known task token's status")


def request_body(form: type[BaseModel]) -> dict:
    """``openapi_extra`` for a form method: its fields, urlencoded (what Qencode's SDKs send).

    multipart/form-data is accepted too (the description says so) but not listed as a second content type:
    client generators (openapi-python-client 0.29) emit broken code for a body with two."""
    schema = form.model_json_schema()
    schema.pop("additionalProperties", None)
    schema["title"] = "Body"  # generated clients name it <Method>Body
    return {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema}}},
            "description": "Fields may also be sent as multipart/form-data, or in the URL's query string."}


def answers(model: type[BaseModel]) -> dict:
    return {200: {"model": model, "description": "Always HTTP 200: `error` is 0, or a code with a `message`"}}

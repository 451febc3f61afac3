"""Reading form posts safely: a hard body limit before parsing, bounded field counts."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request


class Form(dict):
    """The posted fields: ``form[name]`` is the last value of a field, ``items_all`` keeps every pair
    (PHP-style clients repeat ``task_tokens[]`` or number it ``task_tokens[0]``)."""

    def __init__(self, pairs: list[tuple[str, str]]):
        super().__init__(pairs)
        self.items_all = pairs


class BodyTooLarge(Exception):
    """The request body is larger than the configured limit."""


class BadForm(Exception):
    """The body could not be read as a form."""


async def read_form(request: Request, limit: int, max_fields: int = 200) -> Form:
    """The posted fields (urlencoded or multipart, plus any URL query string); the last value of a
    repeated field wins, as in Qencode's own server."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge()
        except ValueError as exc:
            raise BadForm("bad Content-Length") from exc
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge()
    pairs: list[tuple[str, str]] = list(request.query_params.multi_items())
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "multipart/form-data":
        request._body = bytes(body)  # starlette's form parser reads the body we already took from the stream
        try:
            form = await request.form(max_files=0, max_fields=max_fields)
        except Exception as exc:  # starlette raises several kinds for broken multipart bodies
            raise BadForm(f"unreadable multipart form: {exc}") from exc
        pairs += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        return Form(pairs)
    try:
        text = bytes(body).decode("utf-8")
        parsed = parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadForm(f"unreadable form body: {exc}") from exc
    for k, v in parsed:
        if "\x00" in k or "\x00" in v:
            raise BadForm("NUL byte in form field")
    return Form(pairs + parsed)

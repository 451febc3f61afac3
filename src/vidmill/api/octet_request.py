"""Octet v0 ``POST /v0/jobs/create``: the request model and its translation into vidmill's query.

Octet's outputs use NVENC's vocabulary (presets, ``rc`` modes, ``cq``/``qp``). vidmill runs x264, so each
name maps onto what x264 does with the same meaning (README "Octet v0" has the table):

- ``rc`` constqp: every frame at QP ``qp`` (x264's constant-quantizer mode ``-qp``, I/P/B alike; no bitrate);
  vbr: average bitrate ``bitrate_kbps`` (ABR), or constant quality ``cq`` (CRF) capped at ``bitrate_kbps``
  through the VBV when both are given; vbr_hq: the same in two passes when there is a bitrate;
  cbr: ``bitrate_kbps`` with ``maxrate = bitrate`` and a one-second VBV buffer; cbr_hq: two passes.
  No ``rc``: NVENC's own rule: ``qp`` alone means constqp, otherwise vbr.
- Where the host's ``h264_nvenc`` passed vidmill's trial encode, it runs instead, with NVENC's own names for
  all of the above (``engine/nvenc.py``); the query asks for it with ``hardware`` and ``hardware_preset``.
- presets: slow/medium/fast keep their x264 names; hq = medium, hp = veryfast; the low-latency ones
  pick the speed of their twin (ll = fast, llhq = medium, llhp = veryfast): files are for VOD, so no
  zero-latency tuning.
- ``scale_interp_algo`` nn/linear/cubic/lanczos: swscale neighbor/bilinear/bicubic/lanczos.
- Audio is left out (the seed: "Audio is currently not included"), unless the job says
  ``"include_audio": true`` (vidmill's opt-in; Octet enabled it per account on request).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from vidmill.core.query import Query
from vidmill.core.query.parse import to_query_error
from vidmill.core.query.values import _as_url
from vidmill.errors import QueryError

API_VERSION = "v0"
PRESETS = {"slow": "slow", "medium": "medium", "fast": "fast", "hq": "medium", "hp": "veryfast",
           "ll": "fast", "llhq": "medium", "llhp": "veryfast"}
SCALERS = {"nn": "neighbor", "linear": "bilinear", "cubic": "bicubic", "lanczos": "lanczos"}
CODERS = {"cabac": 1, "cavlc": 0}
LEVELS = {"auto": None, "4": "4.0", "4.0": "4.0", "4.1": "4.1", "4.2": "4.2", "5": "5.0", "5.0": "5.0",
          "5.1": "5.1"}
DEFAULT_CONSTQP = 23  # constqp without a qp (or qp -1): x264's own default quantizer
HEVC_NOT_YET = "outputs[{i}].codec: HEVC support is not yet publicly available; use h264"

_RESOLUTION_RE = re.compile(r"^(-1|[0-9]{1,5})x(-1|[0-9]{1,5})$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z0-9]+){1,4}$")
_KEY_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._\-=+@,]{1,255}$")


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Str = Annotated[str, Field(min_length=1, max_length=1024)]
Num = Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=8)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Input(_Strict):
    url: Annotated[str, BeforeValidator(lambda v: _as_url(v, ("http", "https")))]


class Creds(_Strict):
    access_key_id: Str
    secret_access_key: Str


class Destination(_Strict):
    provider: Literal["s3"]
    region: Annotated[str, Field(pattern=_REGION_RE.pattern, max_length=40)] = "us-east-1"
    bucket: Annotated[str, Field(pattern=_BUCKET_RE.pattern)]
    creds: Creds


class Output(_Strict):
    codec: Literal["h264", "hevc"]
    resolution: Annotated[str, Field(pattern=_RESOLUTION_RE.pattern)]
    dest_path: Annotated[str, Field(min_length=1, max_length=1024)]
    bitrate_kbps: Annotated[int, Field(ge=1, le=200000)] | None = None
    scale_interp_algo: Literal["nn", "linear", "cubic", "lanczos"] | None = None
    preset: Literal["slow", "medium", "fast", "hp", "hq", "ll", "llhq", "llhp"] | None = None
    profile: Literal["baseline", "main", "high"] | None = None
    level: Annotated[Literal["auto", "4", "4.0", "4.1", "4.2", "5", "5.0", "5.1"] | None,
                     BeforeValidator(_text)] = None
    rc: Literal["constqp", "vbr", "vbr_hq", "cbr", "cbr_hq"] | None = None
    coder: Literal["cabac", "cavlc"] | None = None
    cq: Annotated[int, Field(ge=0, le=51)] | None = None
    qp: Annotated[int, Field(ge=-1, le=51)] | None = None


class Job(_Strict):
    input: Input
    destination: Destination
    outputs: Annotated[list[Output], Field(min_length=1, max_length=20)]
    callback: Annotated[str | None, BeforeValidator(lambda v: None if v in (None, "") else
                                                    _as_url(v, ("http", "https")))] = None
    include_audio: bool = False


def parse_job(data: dict) -> Job:
    try:
        return Job.model_validate(data)
    except ValidationError as exc:
        raise to_query_error(exc) from None


def dest_key(path: str, field: str) -> str:
    """An S3 key under the bucket: relative, ``/``-separated safe segments, nothing that climbs out."""
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") or not _KEY_SEGMENT_RE.match(p) for p in parts):
        raise QueryError(f"{field}: must be a relative path of names made of letters, digits and . _ - = + @ , "
                         f"separated by / (no empty, . or .. parts)", field=field)
    return path


def size_fields(resolution: str) -> dict:
    width, height = (int(x) for x in resolution.split("x"))
    out = {}
    if width != -1:
        out["width"] = width
    if height != -1:
        out["height"] = height
    if "width" in out and "height" in out:
        return {"size": f"{width}x{height}"}
    return out


def rate_fields(o: Output, i: int) -> dict:
    """``rc``/``cq``/``qp``/``bitrate_kbps`` as vidmill format fields (see the module docstring)."""
    rc = o.rc or ("constqp" if o.qp is not None and o.qp >= 0 and o.cq is None else "vbr")
    where = f"outputs[{i}]"
    if rc == "constqp":
        if o.bitrate_kbps is not None or o.cq is not None:
            bad = "bitrate_kbps" if o.bitrate_kbps is not None else "cq"
            raise QueryError(f"{where}.{bad}: rc constqp encodes at a constant QP; give qp, not {bad}",
                             field=f"{where}.{bad}")
        return {"constant_qp": o.qp if o.qp is not None and o.qp >= 0 else DEFAULT_CONSTQP}
    if o.qp is not None and o.qp >= 0:
        raise QueryError(f"{where}.qp: qp is the constant QP of rc constqp; rc {rc} takes cq or bitrate_kbps",
                         field=f"{where}.qp")
    if rc in ("cbr", "cbr_hq"):
        if o.bitrate_kbps is None:
            raise QueryError(f"{where}.bitrate_kbps: rc {rc} needs a bitrate", field=f"{where}.bitrate_kbps")
        if o.cq is not None:
            raise QueryError(f"{where}.cq: cq is the target quality of rc vbr; rc {rc} keeps the bitrate",
                             field=f"{where}.cq")
        out: dict = {"bitrate": o.bitrate_kbps, "constant_bitrate": True}
        if rc == "cbr_hq":
            out["two_pass"] = True
        return out
    out = {}
    if o.cq is not None:
        out["quality"] = o.cq
    if o.bitrate_kbps is not None:
        out["bitrate"] = o.bitrate_kbps
        if rc == "vbr_hq" and o.cq is None:
            out["two_pass"] = True
    return out


def to_query(job: Job, *, s3_endpoint: str | None = None) -> tuple[Query, dict]:
    """The vidmill query for an Octet job, and the facts the Octet renderer needs (no credentials)."""
    formats = []
    shown = []
    d = job.destination
    for i, o in enumerate(job.outputs):
        if o.codec == "hevc":
            raise QueryError(HEVC_NOT_YET.format(i=i), field=f"outputs[{i}].codec")
        key = dest_key(o.dest_path, f"outputs[{i}].dest_path")
        rate = rate_fields(o, i)
        vcp = dict(rate.pop("vcp", {}))
        if o.preset:
            vcp["preset"] = PRESETS[o.preset]
            fmt_preset = {"hardware_preset": o.preset}
        else:
            fmt_preset = {}
        if o.scale_interp_algo:
            vcp["sws_flags"] = SCALERS[o.scale_interp_algo]
        if o.coder:
            vcp["coder"] = CODERS[o.coder]
        level = LEVELS.get(o.level) if o.level else None
        if level:
            vcp["level"] = level
        fmt: dict = {"output": "mp4", "video_codec": "libx264", "hardware": True, **size_fields(o.resolution), **rate,
                     "destination": {"url": s3_url(s3_endpoint, d.region, d.bucket, key),
                                     "key": d.creds.access_key_id, "secret": d.creds.secret_access_key}}
        fmt.update(fmt_preset)
        if o.profile:
            fmt["profile"] = o.profile
        if vcp:
            fmt["video_codec_parameters"] = vcp
        if not job.include_audio:
            fmt["no_audio"] = True
        formats.append(fmt)
        shown.append({"dest_path": key, "resolution": o.resolution, "bitrate_kbps": o.bitrate_kbps})
    body: dict = {"source": job.input.url, "format": formats, "upscale": True}  # Octet makes the size asked
    if job.callback:
        body["callback_url"] = job.callback
    try:
        query = Query.model_validate(body)
    except ValidationError as exc:
        raise _octet_path(to_query_error(exc)) from None
    data = {"bucket": d.bucket, "region": d.region, "outputs": shown, "include_audio": job.include_audio}
    return query, data


def s3_url(endpoint: str | None, region: str, bucket: str, key: str) -> str:
    """``s3://<host>/<bucket>/<key>``: Qencode's form of an S3 destination; the host is the configured
    S3-compatible endpoint, else AWS's regional one."""
    host = endpoint or f"s3.{region}.amazonaws.com"
    host = host.split("://", 1)[-1].rstrip("/")
    return f"s3://{host}/{bucket}/{key}"


def _octet_path(exc: QueryError) -> QueryError:
    """Errors found on the translated query name the Octet field they came from."""
    message = exc.message.replace("format[", "outputs[").replace("source:", "input.url:")
    message = re.sub(r"^(outputs\[\d+\])\.(size|width|height):", r"\1.resolution:", message)
    return QueryError(message, field=exc.field)

"""Render core task views as Qencode status objects (the /v1/status item and callback body).

What a callback receiver gets
-----------------------------
``POST <callback_url>`` with ``Content-Type: application/x-www-form-urlencoded`` and the fields
``task_token``, ``event`` (``queued``, ``saved``, ``error``, ...), ``callback_type`` (``task``),
``status`` (the /v1/status object of the task as it was at the event, as a JSON string), ``payload``
(verbatim; empty when the task has none) and, on ``error`` events only, ``error_code`` and ``error_message``.
The events of one task arrive in the order they happened (a later one waits until the earlier one is
delivered). Receivers should dedupe on ``task_token`` + ``event``: a callback may arrive more than once.
Signature headers: see ``notify/callbacks.py``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

from vidmill.config import Settings
from vidmill.core.tasks import DeliveryView, TaskView
from vidmill.notify.outbox import HTTP, DeliveryState, Notice, Outgoing

DELIVERY_WARNING = "Callback delivery error"
ERROR_EVENTS = frozenset({"error"})

VIDEO_KINDS = {"mp4", "webm", "metadata", "advanced_hls", "advanced_dash", "webm_dash", "repack", "gif"}
AUDIO_KINDS = {"mp3", "hls_audio", "flac"}
IMAGE_KINDS = {"thumbnail", "thumbnails"}
TEXT_KINDS = {"speech_to_text"}


def _mb(size: int | None) -> str | None:
    return None if size is None else f"{size / 1_000_000:.6g}"


def _num(value: float | None) -> str | None:
    return None if value is None else f"{value:.6g}"


def _list_for(kind: str) -> str:
    if kind in AUDIO_KINDS:
        return "audios"
    if kind in IMAGE_KINDS:
        return "images"
    if kind in TEXT_KINDS:
        return "texts"
    return "videos"


def _seconds(value) -> str | None:
    return None if value is None else f"{float(value):f}"  # ffprobe's text, as Qencode's meta carries it


def render_meta(facts: dict) -> dict:
    """Qencode's ``meta`` object of a status item from vidmill's neutral output facts (engine.probe.output_facts).

    A file with video gives the ``videos[]`` shape (width/height as stored, resolution_* as displayed,
    ``resolution`` the smaller displayed side, ffprobe strings for framerate/bitrate/dar/sar); an audio-only
    output gives the ``audios[]`` shape (index, language, codec, channels, bit_rate, sample_rate as numbers).
    """
    f = facts or {}
    duration = _seconds(f.get("duration"))
    if "video_codec" not in f:
        if "audio_codec" not in f:
            return {"duration": duration} if duration else {}
        return {"index": f.get("audio_index", 0), "language": f.get("audio_language") or "und",
                "title": f.get("audio_title"), "program_id": None, "channels": f.get("audio_channels"),
                "bit_rate": f.get("audio_bit_rate"), "codec": f.get("audio_codec"),
                "sample_rate": f.get("audio_sample_rate"), "program_ids": [], "duration": duration}
    dw, dh = f.get("display_width"), f.get("display_height")
    meta = {
        "width": f.get("width"), "height": f.get("height"), "resolution_width": dw, "resolution_height": dh,
        "resolution": min(dw or 0, dh or 0) or None, "framerate": f.get("frame_rate"), "codec": f.get("video_codec"),
        "bitrate": str(f["video_bit_rate"]) if f.get("video_bit_rate") else None,
        "dar": f.get("dar"), "sar": f.get("sar"), "pix_format": f.get("pix_fmt"), "duration": duration,
    }
    if "audio_codec" in f:
        meta |= {"audio_codec": f["audio_codec"],
                 "audio_bitrate": str(f["audio_bit_rate"]) if f.get("audio_bit_rate") else None,
                 "audio_channels": f.get("audio_channels"), "audio_sample_rate": f.get("audio_sample_rate")}
    return meta


def file_url(settings: Settings, relative: str) -> str:
    return f"{settings.public_url}/files/{relative}"


def _landed(result: dict, kind: str) -> dict:
    """An output stored at the user's destination: its URL and storage (first destination of a fan-out)."""
    landed = result.get("landed")
    if not landed:
        return {}
    return {"url": landed[0]["url"], "storage": {**landed[0]["storage"], "format": kind}}

# Notices the engine and pipeline record (engine.plan.Notice codes) -> the warning message Qencode users know.
NOTICE_MESSAGES = {
    "skipped": "Output skipped",
    "source_size": "Output encoded at the source size",
    "soft_fail": "Errors Ignored by 'allow_soft_fail'",
}


def render_warning(notice: dict, kinds: dict[int, str]) -> dict:
    """A stored notice as Qencode's ``{message, details, tag}``; anything already in that shape passes through."""
    if "code" not in notice:
        return notice
    code, index, stream = notice["code"], notice.get("format", 0), notice.get("stream", 0)
    prefix = _prefix(_list_for(kinds.get(index, "mp4")))
    if code in NOTICE_MESSAGES:
        return {"message": NOTICE_MESSAGES[code], "details": notice.get("message"), "tag": f"{prefix}-{index}-{stream}"}
    return {"message": notice.get("message"), "details": notice.get("field"), "tag": f"{prefix}-{index}-{stream}"}


def _prefix(list_name: str) -> str:
    return list_name[:-1] if list_name != "texts" else "text"


def _landed(result: dict, kind: str) -> dict:
    """An output stored at the user's destination: its URL and storage (first destination of a fan-out)."""
    landed = result.get("landed")
    if not landed:
        return {}
    return {"url": landed[0]["url"], "storage": {**landed[0]["storage"], "format": kind}}


def render_status(view: TaskView, settings: Settings) -> dict:
    lists: dict[str, list] = {"videos": [], "audios": [], "images": [], "texts": []}
    for job in view.jobs:
        if job.status == "skipped":
            continue
        name = _list_for(job.kind)
        prefix = _prefix(name)
        result = job.result or {}
        files = result.get("files") or []
        rel = result.get("main") or (files[0].get("path") if files else None)
        facts = result.get("facts")
        item = {
            "tag": f"{prefix}-{job.index}-0",
            "user_tag": job.spec.get("tag"),
            "profile": None,
            "output_format": job.kind,
            "status": job.status,
            "percent": round(float(job.percent), 2),
            "url": file_url(settings, rel) if rel else None,
            "storage": ({"type": "local", "path": rel, "host": settings.public_url, "format": job.kind}
                        if rel else None),
            **_landed(result, job.kind),
            "bitrate": result.get("bitrate"),
            "duration": _num(result.get("duration")),
            "size": _mb(result.get("size")),
            "meta": render_meta(facts) if facts is not None else (result.get("meta") or {}),
            "error": 1 if job.status == "error" else 0,
            "error_description": job.error_description if job.status == "error" else None,
        }
        renditions = [o for o in result.get("outputs") or [] if o.get("kind") in ("video", "audio")]
        if renditions:  # a streaming output: each rendition's own tag, user tag, playlist and meta
            item["streams"] = [{
                "tag": f"{'audio' if o['kind'] == 'audio' else prefix}-{job.index}-{o['stream']}",
                "user_tag": o.get("user_tag"),
                "url": o.get("url") or (file_url(settings, o["main"]) if o.get("main") else None),
                "meta": render_meta(o.get("facts") or {}),
            } for o in renditions]
        lists[name].append(item)
    kinds = {job.index: job.kind for job in view.jobs}
    status = view.status if view.status != "created" else "queued"
    return {
        "status": status,
        "status_url": f"{settings.public_url}/v1/status",
        "percent": round(float(view.percent), 2),
        "error": int(view.error),
        "error_description": view.error_description,
        "warnings": [render_warning(w, kinds) for w in view.warnings] + delivery_warnings(view.deliveries),
        **lists,
        "duration": _num(view.duration),
        "source_size": _mb(view.source_size),
        "payload": view.payload,
    }


def qencode_form(
    task_token: str,
    event: str,
    status: dict[str, Any],
    payload: str | None,
    *,
    callback_type: str = "task",
    error_code: int | None = None,
    error_message: str | None = None,
) -> dict[str, str]:
    """The form fields of one Qencode callback (see the module docstring).

    ``error_code`` / ``error_message`` are sent on error events only (code 1, "internal", if not given).
    """
    form = {
        "task_token": task_token,
        "event": event,
        "callback_type": callback_type,
        # json.dumps defaults (", " and ": "): what Qencode's own examples show
        "status": json.dumps(status),
        # always present (empty when the task has none): receivers read form["payload"] unconditionally
        "payload": "" if payload is None else payload,
    }
    if event in ERROR_EVENTS:
        form["error_code"] = str(1 if error_code is None else int(error_code))
        form["error_message"] = error_message or ""
    return form


class QencodeNotices:
    """The outbox renderer of Qencode tasks: the form Qencode's own callbacks carry, rendered at send time
    from the event's neutral snapshot."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def render(self, notice: Notice) -> Outgoing | None:
        if notice.channel != HTTP:
            return None  # Qencode tells its users over HTTP callbacks only
        form = qencode_form(notice.task.token, notice.event, render_status(notice.task, self.settings),
                            notice.task.payload, error_code=notice.details.get("error_code"),
                            error_message=notice.details.get("error_message"))
        return Outgoing(HTTP, notice.target, "application/x-www-form-urlencoded", urlencode(form).encode())


def _where(url: str) -> str:
    """A callback URL as a warning may show it: scheme, host, port and path (no user info, no query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _when(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "?"


def delivery_warnings(deliveries: list[DeliveryView]) -> list[dict]:
    """One ``Callback delivery error`` warning per callback that has failed at least once, saying where it
    stands now: pending retry, delivered after N attempts, or given up."""
    out = []
    for d in deliveries:
        if d.channel != HTTP or not d.attempts:
            continue
        if d.state == DeliveryState.DELIVERED.value:
            if d.attempts == 1:
                continue
            truth = f"delivered after {d.attempts} attempts"
        elif d.state == DeliveryState.GIVEN_UP.value:
            truth = f"given up after {d.attempts} attempt(s); last error: {d.last_error}"
        elif d.state == DeliveryState.PENDING.value and d.last_error is None:
            truth = f"redelivery on demand pending after {d.attempts} attempt(s)"
        elif d.state == DeliveryState.PENDING.value:
            truth = f"pending retry: attempt {d.attempts} failed ({d.last_error}); next try at {_when(d.next_try)}"
        else:
            continue
        out.append({"message": DELIVERY_WARNING, "details": f"{d.event} callback to {_where(d.target)}: {truth}",
                    "tag": None})
    return out

"""Render core task views as Qencode status objects (the /v1/status item and callback body)."""

from __future__ import annotations

from vidmill.config import Settings
from vidmill.core.tasks import TaskView

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


def file_url(settings: Settings, relative: str) -> str:
    return f"{settings.public_url}/files/{relative}"


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
        prefix = name[:-1] if name != "texts" else "text"
        result = job.result or {}
        files = result.get("files") or []
        rel = files[0]["path"] if files else None
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
            "meta": result.get("meta") or {},
            "error": 1 if job.status == "error" else 0,
            "error_description": job.error_description if job.status == "error" else None,
        }
        lists[name].append(item)
    status = view.status if view.status != "created" else "queued"
    return {
        "status": status,
        "status_url": f"{settings.public_url}/v1/status",
        "percent": round(float(view.percent), 2),
        "error": int(view.error),
        "error_description": view.error_description,
        "warnings": view.warnings,
        **lists,
        "duration": _num(view.duration),
        "source_size": _mb(view.source_size),
        "payload": view.payload,
    }


def make_callback_renderer(settings: Settings):
    """The outbox renderer for Qencode tasks: the form Qencode's own callbacks carry."""
    from vidmill.core.tasks import task_view
    from vidmill.notify.callbacks import qencode_form

    def render(session, task, event, error_code, error_message):
        view = task_view(session, task)
        return qencode_form(task.token, event, render_status(view, settings), task.payload,
                            error_code=error_code, error_message=error_message)

    return render


def add_delivery_warning(session, task, row) -> None:
    """A callback that could not be delivered becomes the task warning Qencode users know."""
    warning = {"message": "Callback delivery error",
               "details": f"{row.event} callback to {task.callback_url}: {row.last_error}", "tag": None}
    current = list(task.warnings or [])
    if not any(w.get("message") == warning["message"] and w.get("details") == warning["details"] for w in current):
        current.append(warning)
        task.warnings = current

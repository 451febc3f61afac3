"""Render core task views in Octet's shapes: the job (``GET /v0/jobs/{id}``) and the JSON webhook body."""

from __future__ import annotations

import json

from vidmill.api.octet_request import API_VERSION
from vidmill.core.tasks import TaskView
from vidmill.notify.outbox import HTTP, Notice, Outgoing

# vidmill task status -> Octet's words (the webhook's complete|error, plus the two before them)
STATUS = {"created": "queued", "queued": "queued", "downloading": "processing", "encoding": "processing",
          "saving": "processing", "completed": "complete", "error": "error"}


def job_status(status: str) -> str:
    return STATUS.get(status, "processing")


def render_job(view: TaskView) -> dict:
    shown = (view.dialect_data or {}).get("outputs") or []
    outputs = []
    for job in view.jobs:
        asked = shown[job.index] if job.index < len(shown) else {}
        result = job.result or {}
        meta = result.get("meta") or {}
        outputs.append({
            "dest_path": asked.get("dest_path"),
            "resolution": asked.get("resolution"),
            "status": job_status(job.status if job.status != "skipped" else "error"),
            "progress": round(float(job.percent), 2),
            "width": meta.get("width"),
            "height": meta.get("height"),
            "bitrate_kbps": result.get("bitrate"),
            "size": result.get("size"),
            "reason": job.error_description if job.status in ("error", "skipped") else None,
        })
    return {
        "job_id": view.token,
        "status": job_status(view.status),
        "progress": round(float(view.percent), 2),
        "created_at": view.created_at.isoformat() + "Z" if view.created_at else None,
        "finished_at": view.finished_at.isoformat() + "Z" if view.finished_at else None,
        "reason": view.error_description if view.status == "error" else None,
        "outputs": outputs,
    }


def render_webhook(view: TaskView) -> dict | None:
    """The seed's webhook body, for a finished job only (Octet sends no other event)."""
    status = job_status(view.status)
    if status not in ("complete", "error"):
        return None
    return {"api_version": API_VERSION, "job_id": view.token, "status": status}


class OctetNotices:
    """The outbox renderer of Octet jobs: the seed's JSON webhook, once, when the job has finished (the core's
    ``saved`` event, which follows ``error`` too); every other event sends nothing."""

    def render(self, notice: Notice) -> Outgoing | None:
        if notice.channel != HTTP or notice.event != "saved":
            return None
        body = render_webhook(notice.task)
        if body is None:
            return None
        return Outgoing(HTTP, notice.target, "application/json", json.dumps(body).encode())

"""Render core task views in Octet's shapes: the job (``GET /v0/jobs/{id}``) and the JSON webhook body."""

from __future__ import annotations

from vidmill.api.octet_request import API_VERSION
from vidmill.core.tasks import TaskView

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

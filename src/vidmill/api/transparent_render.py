"""Render core task views in TransparentEdge's shapes: the order list item, the order detail (exactly the
seed's fields), the callback body and the notification e-mail."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from vidmill.core.tasks import TaskView
from vidmill.notify.outbox import EMAIL, HTTP, Notice, Outgoing

# vidmill task status -> TransparentEdge's
STATUS = {"created": "QUEUED", "queued": "QUEUED", "downloading": "PROCESSING", "encoding": "PROCESSING",
          "saving": "PROCESSING", "completed": "FINISHED", "error": "ERROR"}


def order_status(status: str) -> str:
    return STATUS.get(status, "PROCESSING")


def timestamp(at: datetime | None) -> str | None:
    """``2021-09-08 09:15:55.875827+00:00`` (str() of an aware UTC datetime, as the seed shows)."""
    return str(at.replace(tzinfo=timezone.utc)) if at else None


def comment(view: TaskView) -> str:
    oid = view.external_id
    status = order_status(view.status)
    if status == "FINISHED":
        return f"Order {oid} finished"
    if status == "ERROR":
        return f"Order {oid} failed: {view.error_description or 'error'}"
    if status == "PROCESSING":
        return f"Order {oid} processing ({round(float(view.percent), 1)}%)"
    return f"Order {oid} queued"


def render_item(view: TaskView) -> dict:
    return {"id": view.external_id, "created_on": timestamp(view.created_at), "status": order_status(view.status)}


def render_detail(view: TaskView) -> dict:
    data = view.dialect_data or {}
    asked = data.get("jobs") or []
    jobs = []
    for job in view.jobs:
        a = asked[job.index] if job.index < len(asked) else {}
        jobs.append({"profile": a.get("profile"), "filename": a.get("filename"), "label": a.get("label"),
                     "progress": round(float(job.percent), 1)})
    download = data.get("download") or {}
    first = asked[0] if asked else {}
    return {
        "order_id": view.external_id,
        "transcodingupload_set": [{"upload_url": u["url"], "upload_protocol": u["protocol"],
                                   "upload_user": u.get("user")} for u in data.get("uploads") or []],
        "transcodingdownload": {"download_url": download.get("url"), "download_protocol": download.get("protocol"),
                                "download_user": download.get("user")},
        "transcodingnotification_set": [{"callback_url": n.get("callback_url"), "email": n.get("email")}
                                        for n in data.get("notifications") or []],
        "transcodingjob_set": jobs,
        "duration": view.duration,
        "size": view.source_size,
        "filename": first.get("filename"),
        "label": first.get("label"),
        "status": order_status(view.status),
        "timestamp": timestamp(view.created_at),
        "comment": comment(view),
    }


def render_callback(view: TaskView) -> dict | None:
    """The callback body: the order detail, sent when the order ends (FINISHED or ERROR)."""
    if order_status(view.status) not in ("FINISHED", "ERROR"):
        return None
    return render_detail(view)


def render_email(view: TaskView) -> tuple[str, str] | None:
    """(subject, text) of the notification e-mail, when the order ends."""
    detail = render_callback(view)
    if detail is None:
        return None
    lines = [detail["comment"], "", f"Order: {detail['order_id']}", f"Status: {detail['status']}",
             f"Source: {detail['transcodingdownload']['download_url']}"]
    for job in detail["transcodingjob_set"]:
        profile = job["profile"] or {}
        lines.append(f"- {job['filename']} (profile {profile.get('id')} {profile.get('name')!s}, "
                     f"label {job['label']!r}): {job['progress']}%")
    return f"[vidmill] Order {detail['order_id']} {detail['status']}", "\n".join(lines) + "\n"


class TransparentNotices:
    """The outbox renderer of TransparentEdge orders, once the order has ended (the core's ``saved`` event):
    the order detail as JSON to the notification's ``callback_url``, and an e-mail with the outcome and
    comment to each notification address."""

    def render(self, notice: Notice) -> Outgoing | None:
        if notice.event != "saved":
            return None
        if notice.channel == HTTP:
            body = render_callback(notice.task)
            if body is None:
                return None
            return Outgoing(HTTP, notice.target, "application/json", json.dumps(body).encode())
        if notice.channel == EMAIL:
            mail = render_email(notice.task)
            if mail is None:
                return None
            subject, text = mail
            return Outgoing(EMAIL, notice.target, "text/plain; charset=utf-8", text.encode(), {"Subject": subject})
        return None

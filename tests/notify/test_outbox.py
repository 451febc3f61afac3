"""The outbox and its Deliverer against a real receiver: order, backoff, horizon, Retry-After, 410, the log."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.servers import CallbackReceiver
from tests.services import fresh_pg_database
from vidmill.api.qencode_render import QencodeNotices
from vidmill.config import Settings
from vidmill.core.query import parse_query
from vidmill.notify import outbox
from vidmill.notify.callbacks import RetryPolicy
from vidmill.notify.deliverer import Deliverer
from vidmill.notify.outbox import HTTP, Notice, Outgoing, SendResult
from vidmill.runtime import Runtime
from vidmill.store.models import DeliveryAttempt, Outbox, Task, utcnow

FAST = RetryPolicy(base=0.001, max_delay=0.001, jitter=0.0, horizon=3600)


@pytest.fixture(autouse=True)
def _loopback_only(loopback_only):
    """Unknown outbound traffic is an error (tests/conftest.py)."""


@pytest.fixture
def rt(tmp_path):
    settings = Settings(data_dir=tmp_path, allow_private_networks=True, callback_timeout=2)
    runtime = Runtime(settings, start_workers=False)
    yield runtime
    runtime.db.dispose()


def _start(rt, callback_url, payload="pl"):
    project, _ = rt.projects.create(f"p{time.monotonic_ns()}")
    token = rt.tasks.create(project)
    q = parse_query(json.dumps({"query": {"source": "https://example.com/a.mp4", "callback_url": callback_url,
                                          "format": [{"output": "mp4"}]}}))
    rt.tasks.start(token, q, payload=payload)
    return token


def _task_id(rt, token):
    with rt.db.tx() as s:
        return s.scalars(select(Task.id).where(Task.token == token)).one()


def _add_event(rt, token, event, **details):
    with rt.db.tx() as s:
        task = s.scalars(select(Task).where(Task.token == token)).one()
        outbox.enqueue(s, task, event, **details)


def _rows(rt):
    with rt.db.tx() as s:
        return [(r.event, r.state, r.attempts) for r in s.scalars(select(Outbox).order_by(Outbox.id))]


def _deliverer(rt, policy=FAST, **kw):
    return Deliverer(rt.db, rt.settings, {"qencode": QencodeNotices(rt.settings)}, policy=policy, **kw)


def _drain(d, rounds=50):
    for _ in range(rounds):
        time.sleep(0.005)
        d.run_once()


def test_delivers_the_qencode_form_rendered_at_send_time(rt):
    with CallbackReceiver() as receiver:
        token = _start(rt, receiver.url)
        d = _deliverer(rt)
        assert d.run_once() == 1
        assert d.run_once() == 0  # nothing left: delivered rows are not resent
    (call,) = receiver.calls
    assert call.form["event"] == "queued" and call.form["task_token"] == token and call.form["payload"] == "pl"
    assert json.loads(call.form["status"])["status"] == "queued"  # the task as it was at the event
    assert _rows(rt) == [("queued", "delivered", 1)]
    assert rt.tasks.get(token).deliveries[0].state == "delivered"


def test_a_process_without_the_web_app_delivers(tmp_path):
    """The CLI and workers build a Runtime, never the web app: its deliverer renders every dialect's body."""
    settings = Settings(data_dir=tmp_path, allow_private_networks=True)
    runtime = Runtime(settings, start_workers=False)
    try:
        with CallbackReceiver() as receiver:
            token = _start(runtime, receiver.url)
            assert runtime.deliverer.run_once() == 1
        assert receiver.events(token) == ["queued"]
    finally:
        runtime.db.dispose()


def test_a_later_event_waits_for_the_earlier_one(rt):
    with CallbackReceiver() as receiver:
        receiver.status = 503
        token = _start(rt, receiver.url)
        _add_event(rt, token, "saved")
        d = _deliverer(rt)
        for _ in range(4):
            time.sleep(0.005)
            d.run_once()
        assert receiver.events(token) == ["queued"] * 4  # saved never overtakes queued
        receiver.status = 200
        _drain(d, 5)
    assert receiver.events(token) == ["queued"] * 5 + ["saved"]
    assert _rows(rt) == [("queued", "delivered", 5), ("saved", "delivered", 1)]


def test_order_leases_and_log_on_postgresql(tmp_path):
    """The due-row query (NOT EXISTS an earlier pending row, FOR UPDATE SKIP LOCKED) on real PostgreSQL."""
    url, drop = fresh_pg_database()
    runtime = Runtime(Settings(data_dir=tmp_path, database_url=url, allow_private_networks=True), start_workers=False)
    try:
        with CallbackReceiver() as receiver:
            receiver.status = 503
            token = _start(runtime, receiver.url)
            _add_event(runtime, token, "saved")
            d = _deliverer(runtime)
            _drain(d, 3)
            assert receiver.events(token) == ["queued"] * 3
            receiver.status = 200
            _drain(d, 3)
        assert receiver.events(token) == ["queued"] * 4 + ["saved"]
        assert _rows(runtime) == [("queued", "delivered", 4), ("saved", "delivered", 1)]
    finally:
        runtime.db.dispose()
        drop()


def test_other_tasks_are_not_held_up_by_a_failing_one(rt):
    with CallbackReceiver() as good:
        stuck = _start(rt, "http://127.0.0.1:9/down")  # port 9 (discard): nothing listens
        fine = _start(rt, good.url)
        d = _deliverer(rt, policy=RetryPolicy(base=60, jitter=0, horizon=3600))
        d.run_once()
        assert good.events(fine) == ["queued"]
    assert [r[1] for r in _rows(rt)] == ["pending", "delivered"]
    assert stuck


def test_every_attempt_is_recorded_and_the_warning_tells_the_current_truth(rt):
    with CallbackReceiver() as receiver:
        receiver.status = 500
        token = _start(rt, receiver.url)
        d = _deliverer(rt, policy=RetryPolicy(base=0.001, max_delay=0.001, jitter=0, horizon=3600))
        d.run_once()
        (warning,) = [w for w in _status(rt, token)["warnings"]]
        assert warning["message"] == "Callback delivery error"
        assert "queued callback to http://127.0.0.1:" in warning["details"]
        assert "pending retry: attempt 1 failed (HTTP 500)" in warning["details"]
        time.sleep(0.01)
        d.run_once()
        receiver.status = 200
        time.sleep(0.01)
        d.run_once()
    (warning,) = _status(rt, token)["warnings"]
    assert warning["details"].endswith("delivered after 3 attempts")
    task_id = _task_id(rt, token)
    with rt.db.tx() as s:
        (log,) = outbox.deliveries(s, task_id, retry_horizon=3600)
    assert [a["http_status"] for a in log["log"]] == [500, 500, 200]
    assert [a["error"] for a in log["log"]] == ["HTTP 500", "HTTP 500", None]
    assert all(a["duration_ms"] >= 0 and a["at"] for a in log["log"])
    assert log["state"] == "delivered" and log["attempts"] == 3


def _status(rt, token):
    from vidmill.api.qencode_render import render_status

    return render_status(rt.tasks.get(token), rt.settings)


def _wait_after_the_attempt(rt) -> float:
    """Seconds from the end of the (only) attempt to the next try: the delay the deliverer chose."""
    with rt.db.tx() as s:
        row = s.scalars(select(Outbox)).one()
        (attempt,) = s.scalars(select(DeliveryAttempt)).all()
        ended = attempt.at + timedelta(milliseconds=attempt.duration_ms)
        return (row.next_try - ended).total_seconds()


def test_backoff_delays_the_next_try(rt):
    with CallbackReceiver() as receiver:
        receiver.status = 503
        _start(rt, receiver.url)
        d = _deliverer(rt, policy=RetryPolicy(base=60.0, jitter=0.0, horizon=3600))
        assert d.run_once() == 1
        assert d.run_once() == 0  # next try is a minute away
    assert _wait_after_the_attempt(rt) == pytest.approx(60, abs=2)
    assert _rows(rt) == [("queued", "pending", 1)]


def test_retry_after_is_honoured(rt):
    with CallbackReceiver() as receiver:
        receiver.status = 429
        receiver.headers = {"Retry-After": "120"}
        _start(rt, receiver.url)
        d = _deliverer(rt, policy=RetryPolicy(base=1.0, jitter=0.0, horizon=3600))
        d.run_once()
    assert _wait_after_the_attempt(rt) == pytest.approx(120, abs=2)  # not the 1 s backoff


def test_retries_stop_at_the_horizon_and_the_last_try_falls_on_it(rt):
    with CallbackReceiver() as receiver:
        receiver.status = 500
        token = _start(rt, receiver.url)
        d = _deliverer(rt, policy=RetryPolicy(base=0.05, factor=1, max_delay=0.05, jitter=0, horizon=2))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10 and _rows(rt)[0][1] == "pending":
            d.run_once()
            time.sleep(0.01)
    (row,) = _rows(rt)
    assert row[1] == "given_up" and row[2] >= 2
    with rt.db.tx() as s:
        out = s.scalars(select(Outbox)).one()
        last = s.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id.desc())).first()
        horizon_end = out.retry_from + timedelta(seconds=2)
        # tried until the horizon: given up only once past it, and no more than one retry delay (0.05 s) lay
        # between the end of the last try and the horizon (the give-up is decided when the try is recorded,
        # a few ms after the send ends)
        assert out.given_up_at >= horizon_end
        assert last.at + timedelta(milliseconds=last.duration_ms) + timedelta(seconds=0.05) >= horizon_end
    (warning,) = _status(rt, token)["warnings"]
    assert f"given up after {row[2]} attempt(s); last error: HTTP 500" in warning["details"]


def test_410_gone_stops_at_once(rt):
    with CallbackReceiver() as receiver:
        receiver.status = 410
        _start(rt, receiver.url)
        _drain(_deliverer(rt), 5)
    assert _rows(rt) == [("queued", "given_up", 1)]


def test_refused_url_is_not_retried(rt):
    token = _start(rt, "http://192.0.2.1/hook")  # TEST-NET: always refused by the guard
    _deliverer(rt).run_once()
    assert _rows(rt) == [("queued", "given_up", 1)]
    assert "given up" in _status(rt, token)["warnings"][0]["details"]


def test_unresolvable_host_stays_retryable(rt):
    """A DNS failure may be an outage: the callback is retried later, not given up after one try."""
    token = _start(rt, "http://hook.invalid/callback")  # RFC 6761: .invalid never resolves
    d = _deliverer(rt, policy=RetryPolicy(base=60.0, jitter=0.0, horizon=3600))
    assert d.run_once() == 1
    assert _rows(rt) == [("queued", "pending", 1)]
    with rt.db.tx() as s:
        row = s.scalars(select(Outbox)).one()
        assert "does not resolve" in row.last_error
        assert row.next_try > utcnow()
    assert d.run_once() == 0  # the retry waits for its backoff
    assert "pending retry" in _status(rt, token)["warnings"][0]["details"]


def test_redeliver_sends_a_given_up_callback_again(rt):
    with CallbackReceiver() as receiver:
        receiver.status = 410
        token = _start(rt, receiver.url)
        d = _deliverer(rt)
        d.run_once()
        assert _rows(rt) == [("queued", "given_up", 1)]
        receiver.status = 200
        task_id = _task_id(rt, token)
        with rt.db.tx() as s:
            row_id = s.scalars(select(Outbox.id)).one()
            outbox.redeliver(s, task_id, row_id)
        assert d.run_once(task_id=task_id) == 1
    assert receiver.events(token) == ["queued", "queued"]
    assert _rows(rt) == [("queued", "delivered", 2)]
    assert _status(rt, token)["warnings"][0]["details"].endswith("delivered after 2 attempts")


def test_a_dialect_renders_neutral_requests_for_its_own_channels(rt):
    """What issue 8's dialects plug in: a renderer returning an ``Outgoing`` and a sender per channel."""
    sent: list[Outgoing] = []

    class Octetish:
        def render(self, notice: Notice) -> Outgoing | None:
            if notice.event == "queued":
                return None  # this dialect tells only final states
            body = json.dumps({"job_id": notice.task.token, "status": notice.task.status}).encode()
            return Outgoing(HTTP, notice.target, "application/json", body)

    class Recorder:
        def send(self, outgoing: Outgoing, *, secret: str) -> SendResult:
            sent.append(outgoing)
            return SendResult(True, http_status=204)

    token = _start(rt, "http://127.0.0.1:9/cb")
    with rt.db.tx() as s:
        s.scalars(select(Task).where(Task.token == token)).one().dialect = "octet"
        s.scalars(select(Outbox)).one().dialect = "octet"
    with rt.db.tx() as s:
        task = s.scalars(select(Task).where(Task.token == token)).one()
        task.status = "completed"
        outbox.enqueue(s, task, "saved")
    d = Deliverer(rt.db, rt.settings, {"octet": Octetish()}, senders={HTTP: Recorder()}, policy=FAST)
    _drain(d, 3)
    assert [json.loads(o.body) for o in sent] == [{"job_id": token, "status": "completed"}]
    assert [r[:2] for r in _rows(rt)] == [("queued", "skipped"), ("saved", "delivered")]

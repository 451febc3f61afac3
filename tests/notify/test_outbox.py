"""The outbox Deliverer against a real receiver: delivery, retries with backoff, the warning hook."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from tests.servers import CallbackReceiver
from vidmill.api.qencode_render import add_delivery_warning, make_callback_renderer
from vidmill.config import Settings
from vidmill.core.query import parse_query
from vidmill.notify import outbox
from vidmill.notify.callbacks import RetryPolicy
from vidmill.notify.outbox import Deliverer
from vidmill.runtime import Runtime
from vidmill.store.models import Outbox, utcnow


@pytest.fixture
def rt(tmp_path):
    settings = Settings(data_dir=tmp_path, allow_private_networks=True, callback_timeout=2)
    runtime = Runtime(settings, start_workers=False)
    outbox.RENDERERS["qencode"] = make_callback_renderer(settings)
    outbox.ON_FAILURE["qencode"] = add_delivery_warning
    yield runtime
    runtime.db.dispose()


def _start(rt, callback_url):
    project, _ = rt.projects.create("p")
    token = rt.tasks.create(project)
    q = parse_query(json.dumps({"query": {"source": "https://example.com/a.mp4", "callback_url": callback_url,
                                          "format": [{"output": "mp4"}]}}))
    rt.tasks.start(token, q, payload="pl")
    return token


def _rows(rt):
    with rt.db.tx() as s:
        return [(r.event, r.attempts, r.delivered_at is not None, r.failed_at is not None)
                for r in s.scalars(select(Outbox).order_by(Outbox.id))]


def test_delivers_and_marks_delivered(rt):
    with CallbackReceiver() as receiver:
        token = _start(rt, receiver.url)
        d = Deliverer(rt.db, rt.settings)
        assert d.run_once() == 1
        assert d.run_once() == 0  # nothing left: delivered rows are not resent
    assert receiver.events(token) == ["queued"]
    assert receiver.calls[0].form["payload"] == "pl"
    assert _rows(rt) == [("queued", 1, True, False)]


def test_failure_retries_with_backoff_and_warns_once(rt):
    with CallbackReceiver() as receiver:
        receiver.status = 500
        token = _start(rt, receiver.url)
        d = Deliverer(rt.db, rt.settings, policy=RetryPolicy(max_attempts=3, base=0.001, jitter=0.0))
        for _ in range(5):
            time.sleep(0.01)
            d.run_once()
    assert len(receiver.events(token)) == 3  # bounded by the policy
    assert _rows(rt) == [("queued", 3, False, True)]
    warnings = rt.tasks.get(token).warnings
    assert [w["message"] for w in warnings] == ["Callback delivery error"]
    assert "HTTP 500" in warnings[0]["details"]
    assert rt.tasks.get(token).status == "queued"  # the task itself is untouched


def test_backoff_delays_the_next_try(rt):
    with CallbackReceiver() as receiver:
        receiver.status = 503
        _start(rt, receiver.url)
        d = Deliverer(rt.db, rt.settings, policy=RetryPolicy(max_attempts=5, base=60.0, jitter=0.0))
        assert d.run_once() == 1
        assert d.run_once() == 0  # next try is a minute away
    assert _rows(rt) == [("queued", 1, False, False)]


def test_refused_url_is_not_retried(rt):
    token = _start(rt, "http://192.0.2.1/hook")  # TEST-NET: always refused by the guard
    d = Deliverer(rt.db, rt.settings)
    d.run_once()
    assert _rows(rt) == [("queued", 1, False, True)]
    assert rt.tasks.get(token).warnings[0]["message"] == "Callback delivery error"


def test_unresolvable_host_stays_retryable(rt):
    """A DNS failure may be an outage: the callback is retried later, not given up after one try."""
    token = _start(rt, "http://hook.invalid/callback")  # RFC 6761: .invalid never resolves
    d = Deliverer(rt.db, rt.settings, policy=RetryPolicy(max_attempts=5, base=60.0, jitter=0.0))
    assert d.run_once() == 1
    assert _rows(rt) == [("queued", 1, False, False)]  # one try, not failed: scheduled again
    with rt.db.tx() as s:
        row = s.scalars(select(Outbox)).one()
        assert "does not resolve" in row.last_error
        assert row.next_try > utcnow()
    assert d.run_once() == 0  # the retry waits for its backoff
    assert rt.tasks.get(token).warnings[0]["message"] == "Callback delivery error"  # the user still hears it

"""notify.callbacks: signatures, one signed POST to a real local receiver, the retry policy; the Qencode form."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import pytest

from vidmill import __version__
from vidmill.config import Settings
from vidmill.api.qencode_render import qencode_form
from vidmill.notify.callbacks import HttpSender, RetryPolicy, retry_after_seconds, sign, verify
from vidmill.notify.outbox import HTTP, Outgoing, SendResult

SECRET = "project-callback-secret"
STATUS = {"status": "completed", "percent": 100.0, "error": 0, "videos": [{"tag": "video-0-0", "size": "1.2"}]}


@pytest.fixture(autouse=True)
def _loopback_only(loopback_only):
    """Unknown outbound traffic is an error (tests/conftest.py)."""


# --- form -------------------------------------------------------------------------------------------


def test_form_queued():
    form = qencode_form("a" * 32, "queued", {"status": "queued", "percent": 0}, '{"order": 17}')
    assert form == {
        "task_token": "a" * 32,
        "event": "queued",
        "callback_type": "task",
        "status": '{"status": "queued", "percent": 0}',
        "payload": '{"order": 17}',
    }


def test_form_saved_without_payload():
    form = qencode_form("b" * 32, "saved", STATUS, None, error_code=3, error_message="ignored")
    assert form == {
        "task_token": "b" * 32,
        "event": "saved",
        "callback_type": "task",
        "status": json.dumps(STATUS),
        "payload": "",
    }
    assert '"percent": 100.0, "error": 0' in form["status"]


def test_form_error():
    status = {"status": "error", "error": 1, "error_description": "source download failed: HTTP 404 Not Found"}
    form = qencode_form(
        "c" * 32, "error", status, "p", callback_type="stream", error_code=1,
        error_message="source download failed: HTTP 404 Not Found",
    )
    assert form == {
        "task_token": "c" * 32,
        "event": "error",
        "callback_type": "stream",
        "status": '{"status": "error", "error": 1, "error_description": "source download failed: HTTP 404 Not Found"}',
        "payload": "p",
        "error_code": "1",
        "error_message": "source download failed: HTTP 404 Not Found",
    }


# --- signature ----------------------------------------------------------------------------------------


def test_sign_format():
    body, ts = b"task_token=x&event=saved", 1_767_225_600
    expected = hmac.new(SECRET.encode(), b"1767225600.task_token=x&event=saved", hashlib.sha256).hexdigest()
    assert sign(SECRET, body, ts) == f"sha256={expected}"


def test_verify_round_trip():
    body, ts = b"a=1&b=2", 1_767_225_600
    assert verify(SECRET, body, ts, sign(SECRET, body, ts), now=ts + 10)
    assert verify(SECRET, body, str(ts), sign(SECRET, body, ts), now=ts - 299)


@pytest.mark.parametrize(
    "secret, body, timestamp, now",
    [
        pytest.param("wrong", b"a=1", 1000, 1000, id="wrong-secret"),
        pytest.param(SECRET, b"a=2", 1000, 1000, id="tampered-body"),
        pytest.param(SECRET, b"a=1", 1001, 1001, id="tampered-timestamp"),
        pytest.param(SECRET, b"a=1", 1000, 1301, id="expired"),
        pytest.param(SECRET, b"a=1", 1000, 699, id="from-the-future"),
        pytest.param(SECRET, b"a=1", "not-a-number", 1000, id="bad-timestamp"),
    ],
)
def test_verify_rejects(secret, body, timestamp, now):
    signature = sign(SECRET, b"a=1", 1000)
    assert verify(secret, body, timestamp, signature, now=now) is False


def test_verify_requires_prefix():
    signature = sign(SECRET, b"a=1", 1000)
    assert verify(SECRET, b"a=1", 1000, signature.removeprefix("sha256="), now=1000) is False


# --- delivery ---------------------------------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    server: "ReceiverServer"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), body))
        if self.path == "/slow":
            self.server.stop.wait(10)
            return
        status = {"/fail": 500, "/moved": 302, "/gone": 410, "/busy": 503}.get(self.path, 200)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/hook")
        if status == 503:
            self.send_header("Retry-After", "30")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Receiver)
        self.received: list[tuple[str, dict, bytes]] = []
        self.stop = threading.Event()

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def receiver():
    server = ReceiverServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, allow_private_networks=True, callback_timeout=0.5)


def url(server, path="/hook") -> str:
    return f"http://127.0.0.1:{server.server_port}{path}"


def _send(target, form, settings, secret=SECRET):
    body = urlencode(form).encode()
    return HttpSender(settings).send(Outgoing(HTTP, target, "application/x-www-form-urlencoded", body), secret=secret)


def test_send_posts_signed_form(receiver, settings):
    form = qencode_form("d" * 32, "saved", STATUS, 'ünïcode & = "payload"')
    assert _send(url(receiver), form, settings) == SendResult(True, http_status=200)

    ((path, headers, body),) = receiver.received
    assert path == "/hook"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["User-Agent"] == f"vidmill/{__version__}"
    assert headers["Host"] == f"127.0.0.1:{receiver.server_port}"
    assert {k: v for k, (v,) in parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True).items()} == form
    assert json.loads(parse_qs(body.decode())["status"][0]) == STATUS
    assert verify(SECRET, body, headers["X-Vidmill-Timestamp"], headers["X-Vidmill-Signature"])


def test_send_http_500(receiver, settings):
    assert _send(url(receiver, "/fail"), {"a": "1"}, settings) == SendResult(False, 500, "HTTP 500")


def test_send_does_not_follow_redirects(receiver, settings):
    assert _send(url(receiver, "/moved"), {"a": "1"}, settings) == SendResult(False, 302, "HTTP 302")
    assert [path for path, _, _ in receiver.received] == ["/moved"]


def test_send_410_is_final(receiver, settings):
    assert _send(url(receiver, "/gone"), {"a": "1"}, settings) == SendResult(False, 410, "HTTP 410", final=True)


def test_send_reads_retry_after(receiver, settings):
    result = _send(url(receiver, "/busy"), {"a": "1"}, settings)
    assert (result.http_status, result.retry_after, result.final) == (503, 30.0, False)


def test_send_closed_port(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _send(f"http://127.0.0.1:{port}/hook", {"a": "1"}, settings)
    assert not result.ok and not result.final and result.http_status is None
    assert result.error.startswith("127.0.0.1: ConnectError")


def test_send_timeout(receiver, settings):
    result = _send(url(receiver, "/slow"), {"a": "1"}, settings)
    assert (result.ok, result.error) == (False, "127.0.0.1: timed out after 0.5 s")


def test_send_refused_url_never_connects(receiver, tmp_path):
    strict = Settings(data_dir=tmp_path, allow_private_networks=False)
    result = _send(url(receiver), {"a": "1"}, strict)
    assert result.final and result.error.startswith("refused: ")
    result = _send("http://169.254.169.254/hook", {"a": "1"}, strict)
    assert result.final and result.error.startswith("refused: ")
    assert receiver.received == []


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 60.0, id="http-date"),
        pytest.param("Wed, 21 Oct 2015 07:26:00 GMT", 0.0, id="http-date-past"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_retry_after_seconds(value, expected):
    assert retry_after_seconds(value, now=1445412420.0) == expected  # 2015-10-21T07:27:00Z


# --- retry policy ---------------------------------------------------------------------------------


def test_retry_sequence_without_jitter():
    policy = RetryPolicy(base=1, max_delay=300, jitter=0)
    assert [policy.next_delay(n) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


def test_default_policy_retries_for_three_days_with_hourly_tries_at_most():
    policy = RetryPolicy(jitter=0)
    assert policy.horizon == 3 * 24 * 3600
    assert [policy.next_delay(n) for n in (1, 2, 3, 10, 11, 500)] == [5, 10, 20, 2560, 3600, 3600]


@pytest.mark.parametrize(
    "attempt, rand, expected",
    [
        pytest.param(3, 0.0, 15.0, id="low-edge"),
        pytest.param(3, 0.5, 20.0, id="middle"),
        pytest.param(3, 1.0, 25.0, id="high-edge"),
        pytest.param(7, 1.0, 400.0, id="high-edge-late"),
    ],
)
def test_retry_jitter_band(attempt, rand, expected):
    assert RetryPolicy().next_delay(attempt, rand=rand) == pytest.approx(expected)


def test_retry_jitter_never_exceeds_cap():
    assert RetryPolicy().next_delay(15, rand=0.999) == 3600


def test_retry_random_jitter_stays_in_band():
    policy = RetryPolicy()
    assert all(60 <= policy.next_delay(5) <= 100 for _ in range(200))
    assert len({policy.next_delay(5) for _ in range(20)}) > 1  # jittered


def test_retry_policy_from_settings(tmp_path):
    settings = Settings(data_dir=tmp_path, callback_retry_base=2, callback_retry_max_delay=7,
                        callback_retry_horizon=90)
    policy = RetryPolicy.from_settings(settings)
    assert (policy.base, policy.max_delay, policy.horizon) == (2, 7, 90)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"horizon": -1}, id="negative-horizon"),
        pytest.param({"base": 0}, id="zero-base"),
        pytest.param({"factor": 0.5}, id="shrinking"),
        pytest.param({"base": 10, "max_delay": 5}, id="cap-below-base"),
        pytest.param({"jitter": 1.0}, id="jitter-too-big"),
    ],
)
def test_retry_policy_validates(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)

"""notify.callbacks: Qencode form fields, signatures, one delivery to a real local receiver, retry policy."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from vidmill import __version__
from vidmill.config import Settings
from vidmill.errors import DeliveryError, UrlRefused
from vidmill.notify.callbacks import RetryPolicy, deliver, qencode_form, sign, verify

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
        status = {"/fail": 500, "/moved": 302}.get(self.path, 200)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/hook")
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


def test_deliver_posts_signed_form(receiver, settings):
    form = qencode_form("d" * 32, "saved", STATUS, 'ünïcode & = "payload"')
    deliver(url(receiver), form, secret=SECRET, settings=settings)

    ((path, headers, body),) = receiver.received
    assert path == "/hook"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["User-Agent"] == f"vidmill/{__version__}"
    assert headers["Host"] == f"127.0.0.1:{receiver.server_port}"
    assert {k: v for k, (v,) in parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True).items()} == form
    assert json.loads(parse_qs(body.decode())["status"][0]) == STATUS
    assert verify(SECRET, body, headers["X-Vidmill-Timestamp"], headers["X-Vidmill-Signature"])


def test_deliver_http_500(receiver, settings):
    with pytest.raises(DeliveryError, match="^callback to 127.0.0.1 failed: HTTP 500$"):
        deliver(url(receiver, "/fail"), {"a": "1"}, secret=SECRET, settings=settings)


def test_deliver_does_not_follow_redirects(receiver, settings):
    with pytest.raises(DeliveryError, match="HTTP 302"):
        deliver(url(receiver, "/moved"), {"a": "1"}, secret=SECRET, settings=settings)
    assert [path for path, _, _ in receiver.received] == ["/moved"]


def test_deliver_closed_port(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DeliveryError, match="callback to 127.0.0.1 failed: ConnectError"):
        deliver(f"http://127.0.0.1:{port}/hook", {"a": "1"}, secret=SECRET, settings=settings)


def test_deliver_timeout(receiver, settings):
    with pytest.raises(DeliveryError, match="callback to 127.0.0.1 failed: timed out"):
        deliver(url(receiver, "/slow"), {"a": "1"}, secret=SECRET, settings=settings)


def test_deliver_refused_url_never_connects(receiver, tmp_path):
    strict = Settings(data_dir=tmp_path, allow_private_networks=False)
    with pytest.raises(DeliveryError, match="callback to 127.0.0.1 refused") as info:
        deliver(url(receiver), {"a": "1"}, secret=SECRET, settings=strict)
    assert isinstance(info.value.__cause__, UrlRefused)
    with pytest.raises(DeliveryError, match="169.254.169.254 refused"):
        deliver("http://169.254.169.254/hook", {"a": "1"}, secret=SECRET, settings=strict)
    assert receiver.received == []


# --- retry policy ---------------------------------------------------------------------------------


def test_retry_sequence_without_jitter():
    policy = RetryPolicy(jitter=0)
    assert [policy.next_delay(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 64, None, None]


def test_retry_delay_capped():
    policy = RetryPolicy(max_attempts=30, jitter=0)
    assert [policy.next_delay(n) for n in (9, 10, 29)] == [256, 300, 300]
    assert policy.next_delay(30) is None


@pytest.mark.parametrize(
    "attempt, rand, expected",
    [
        pytest.param(3, 0.0, 3.6, id="low-edge"),
        pytest.param(3, 0.5, 4.0, id="middle"),
        pytest.param(3, 1.0, 4.4, id="high-edge"),
        pytest.param(7, 1.0, 70.4, id="high-edge-late"),
    ],
)
def test_retry_jitter_band(attempt, rand, expected):
    assert RetryPolicy().next_delay(attempt, rand=rand) == pytest.approx(expected)


def test_retry_jitter_never_exceeds_cap():
    assert RetryPolicy(max_attempts=20).next_delay(15, rand=0.999) == 300


def test_retry_random_jitter_stays_in_band():
    policy = RetryPolicy()
    assert all(14.4 <= policy.next_delay(5) <= 17.6 for _ in range(200))


def test_retry_policy_from_settings(tmp_path):
    policy = RetryPolicy.from_settings(Settings(data_dir=tmp_path, callback_max_attempts=3), jitter=0)
    assert [policy.next_delay(n) for n in (1, 2, 3)] == [1, 2, None]


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"max_attempts": 0}, id="no-attempts"),
        pytest.param({"base": 0}, id="zero-base"),
        pytest.param({"factor": 0.5}, id="shrinking"),
        pytest.param({"max_delay": 0.5}, id="cap-below-base"),
        pytest.param({"jitter": 1.0}, id="jitter-too-big"),
    ],
)
def test_retry_policy_validates(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)

"""sources.http.fetch against real HTTP(S) servers on 127.0.0.1; no other outbound connection is allowed."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from vidmill.config import Settings
from vidmill.errors import SourceError, SourceTooLarge, UrlRefused
from vidmill.net import ssrf
from vidmill.net.http import new_client
from vidmill.sources import FetchResult
from vidmill.sources.http import fetch

MEDIA_NAME = "bbb_720p_5s_aac51.mp4"
REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture(autouse=True)
def _loopback_only(loopback_only):
    """Unknown outbound traffic is an error (tests/conftest.py)."""


class Resolver:
    """A fake DNS: names map to a list of answers, one consumed per lookup (the last one sticks)."""

    def __init__(self):
        self.answers: dict[str, list[str]] = {}
        self.lookups: list[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return REAL_GETADDRINFO(host, port, family, type, proto, flags)
        self.lookups.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        queue = self.answers[host]
        ip = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]


@pytest.fixture
def resolver(monkeypatch):
    fake = Resolver()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


class Handler(BaseHTTPRequestHandler):
    server: "Server"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.hits.append(self.path)
        route = getattr(self, "route_" + self.path.strip("/").split("/")[0].replace("-", "_"), None)
        if route is None:
            self.send_error(404)
        else:
            route()

    def route_media(self):
        data = (self.server.media / self.path.split("/")[-1]).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route_host(self):
        body = f"{self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_redirect_ok(self):
        self._redirect(f"/media/{MEDIA_NAME}")

    def route_redirect_meta(self):
        self._redirect("http://169.254.169.254/latest/meta-data/")

    def route_redirect_private(self):
        self._redirect(f"http://127.0.0.1:{self.server.server_port}/media/{MEDIA_NAME}")

    def route_loop(self):
        self._redirect("/loop")

    def route_chain(self):
        n = int(self.path.split("/")[-1])
        self._redirect(f"/chain/{n - 1}" if n > 0 else f"/media/{MEDIA_NAME}")

    def route_big(self):
        self.send_response(200)
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()
        self._quietly(lambda: self.wfile.write(b"x" * 1000))

    def route_liar(self):
        # No Content-Length: the body ends when the connection closes. Streams until the client hangs up.
        self.send_response(200)
        self.end_headers()

        def stream():
            for _ in range(1000):
                self.wfile.write(b"y" * 65536)
                self.server.liar_sent += 65536

        self._quietly(stream)

    def route_stall(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self._quietly(lambda: (self.wfile.write(b"z" * 10), self.wfile.flush()))
        self.server.stop.wait(10)

    def route_truncated(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self._quietly(lambda: self.wfile.write(b"t" * 10))

    def route_trickle(self):
        # /trickle/<seconds>: a huge Content-Length, then one byte every <seconds> until the client hangs up.
        interval = float(self.path.split("/")[-1])
        self.send_response(200)
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()

        def stream():
            self.wfile.write(b"a")
            self.wfile.flush()
            while not self.server.stop.wait(interval):
                self.wfile.write(b"a")
                self.wfile.flush()
                self.server.trickled += 1

        self._quietly(stream)

    def route_slow_headers(self):
        self.server.stop.wait(10)  # never answers: only the read timeout or the deadline ends the wait

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    @staticmethod
    def _quietly(write):
        try:
            write()
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread: nothing outlives the test

    def __init__(self, media: Path, ssl_context: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.media = media
        self.hits: list[str] = []
        self.liar_sent = 0
        self.trickled = 0
        self.stop = threading.Event()
        if ssl_context is not None:
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if ssl_context else "http"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.server_port}{path}"

    def handle_error(self, request, client_address):
        pass  # a client that hangs up mid-body is what several tests do on purpose


def run_server(media: Path, ssl_context: ssl.SSLContext | None = None):
    server = Server(media, ssl_context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    return server, thread


def stop_server(server: Server, thread: threading.Thread) -> None:
    server.stop.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def server(media):
    srv, thread = run_server(media)
    yield srv
    stop_server(srv, thread)


def make_settings(tmp_path: Path, **overrides) -> Settings:
    values = dict(
        data_dir=tmp_path,
        allow_private_networks=True,
        source_connect_timeout=2.0,
        source_read_timeout=1.0,
    )
    values.update(overrides)
    return Settings(**values)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_is_byte_exact(server, media, tmp_path):
    dest = tmp_path / "work" / "source.mp4"
    progress: list[tuple[int, int | None]] = []
    result = fetch(
        server.url(f"/media/{MEDIA_NAME}"),
        dest,
        settings=make_settings(tmp_path),
        on_progress=lambda done, total: progress.append((done, total)),
    )
    expected = (media / MEDIA_NAME).read_bytes()
    assert result == FetchResult(path=dest, size=len(expected), content_type="video/mp4")
    assert dest.read_bytes() == expected
    assert leftovers(dest.parent) == ["source.mp4"]
    assert progress[-1] == (len(expected), len(expected))
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)


def test_private_source_refused_without_allow_private(server, tmp_path):
    dest = tmp_path / "source.mp4"
    with pytest.raises(UrlRefused, match="private networks are not allowed"):
        fetch(server.url(f"/media/{MEDIA_NAME}"), dest, settings=make_settings(tmp_path, allow_private_networks=False))
    assert server.hits == []
    assert not dest.exists()


def test_http_error_status(server, tmp_path):
    dest = tmp_path / "source.mp4"
    with pytest.raises(SourceError, match="^source download failed: HTTP 404 Not Found$"):
        fetch(server.url("/missing.mp4"), dest, settings=make_settings(tmp_path))
    assert leftovers(tmp_path) == []


def test_redirect_followed(server, media, tmp_path):
    dest = tmp_path / "source.mp4"
    result = fetch(server.url("/chain/4"), dest, settings=make_settings(tmp_path))
    assert result.size == (media / MEDIA_NAME).stat().st_size
    assert server.hits == ["/chain/4", "/chain/3", "/chain/2", "/chain/1", "/chain/0", f"/media/{MEDIA_NAME}"]


def test_redirect_to_metadata_refused(server, tmp_path):
    dest = tmp_path / "source.mp4"
    with pytest.raises(UrlRefused, match="169.254.169.254.*never allowed"):
        fetch(server.url("/redirect-meta"), dest, settings=make_settings(tmp_path))
    assert server.hits == ["/redirect-meta"]
    assert leftovers(tmp_path) == []


def test_redirect_from_public_name_to_private_refused(resolver, tmp_path):
    # In-memory transport: the "public" server is never contacted for real.
    resolver.answers["public.example"] = ["93.184.216.34"]
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers["host"]))
        return httpx.Response(302, headers={"Location": "http://127.0.0.1:8080/media/x.mp4"})

    settings = make_settings(tmp_path, allow_private_networks=False)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(UrlRefused, match="loopback"):
            fetch("http://public.example/start", tmp_path / "s.mp4", settings=settings, client=client)
    assert seen == [("http://93.184.216.34/start", "public.example")]


def test_redirect_loop_stops(server, tmp_path):
    with pytest.raises(SourceError, match="more than 5 redirects"):
        fetch(server.url("/loop"), tmp_path / "source.mp4", settings=make_settings(tmp_path))
    assert server.hits == ["/loop"] * 6
    assert leftovers(tmp_path) == []


def test_content_length_over_limit_refused_before_download(server, tmp_path):
    progress = []
    with pytest.raises(SourceTooLarge, match="10000000 bytes, over the limit of 5000 bytes"):
        fetch(server.url("/big"), tmp_path / "source.mp4", settings=make_settings(tmp_path, max_source_bytes=5000),
              on_progress=lambda *a: progress.append(a))
    assert progress == []
    assert leftovers(tmp_path) == []


def test_lying_server_aborted_while_streaming(server, tmp_path):
    limit = 200_000
    dest = tmp_path / "source.mp4"
    with pytest.raises(SourceTooLarge, match="aborted while downloading"):
        fetch(server.url("/liar"), dest, settings=make_settings(tmp_path, max_source_bytes=limit))
    assert leftovers(tmp_path) == []  # neither source.mp4 nor source.part
    assert server.liar_sent < 1000 * 65536  # we hung up; the server did not get to send it all


def test_stalled_server_read_timeout(server, tmp_path):
    started = time.monotonic()
    with pytest.raises(SourceError, match="read timeout") as info:
        fetch(server.url("/stall"), tmp_path / "source.mp4", settings=make_settings(tmp_path, source_read_timeout=0.5))
    assert time.monotonic() - started < 3
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert leftovers(tmp_path) == []


def test_truncated_body_is_an_error(server, tmp_path):
    with pytest.raises(SourceError, match="source download failed"):
        fetch(server.url("/truncated"), tmp_path / "source.mp4", settings=make_settings(tmp_path))
    assert leftovers(tmp_path) == []


def test_connection_refused_is_source_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError, match="cannot connect to 127.0.0.1"):
        fetch(f"http://127.0.0.1:{port}/x.mp4", tmp_path / "s.mp4", settings=make_settings(tmp_path))


def test_non_http_scheme_refused(tmp_path):
    with pytest.raises(UrlRefused, match="'file:'"):
        fetch("file:///etc/passwd", tmp_path / "s.mp4", settings=make_settings(tmp_path))


def test_connection_pinned_to_vetted_ip(server, resolver, tmp_path):
    """The name is resolved once, by the guard; httpx connects to that IP and sends the real Host."""
    resolver.answers["media.example"] = ["127.0.0.1"]
    dest = tmp_path / "host.txt"
    fetch(f"http://media.example:{server.server_port}/host", dest, settings=make_settings(tmp_path))
    assert dest.read_text() == f"media.example:{server.server_port}"
    assert resolver.lookups == ["media.example"]


def test_dns_rebinding_has_no_window(server, resolver, tmp_path):
    # First answer passes the guard; every later answer is the metadata address. A client that resolved
    # again would try 169.254.169.254 (and trip the loopback-only connect guard).
    resolver.answers["rebind.example"] = ["127.0.0.1", "169.254.169.254"]
    dest = tmp_path / "host.txt"
    fetch(f"http://rebind.example:{server.server_port}/host", dest, settings=make_settings(tmp_path))
    assert dest.read_text() == f"rebind.example:{server.server_port}"
    assert resolver.lookups == ["rebind.example"]


@pytest.fixture
def tls_server(media, tmp_path_factory):
    if shutil.which("openssl") is None:  # part of every machine this project runs on: never a silent skip
        pytest.fail("openssl CLI not available to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=media.example",
         "-addext", "subjectAltName=DNS:media.example", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    seen_sni: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
    srv, thread = run_server(media, context)
    srv.seen_sni = seen_sni
    srv.ca = ssl.create_default_context(cafile=str(cert))
    yield srv
    stop_server(srv, thread)


def test_https_pinned_with_sni_and_certificate_of_real_name(tls_server, resolver, tmp_path):
    resolver.answers["media.example"] = ["127.0.0.1"]
    dest = tmp_path / "host.txt"
    with new_client(timeout=2.0, verify=tls_server.ca) as client:
        fetch(f"https://media.example:{tls_server.server_port}/host", dest, settings=make_settings(tmp_path),
              client=client)
    assert dest.read_text() == f"media.example:{tls_server.server_port}"
    assert tls_server.seen_sni == ["media.example"]
    assert resolver.lookups == ["media.example"]


def test_https_without_sni_fails_verification(tls_server, tmp_path):
    # Control: the same pinned request without the sni_hostname extension verifies the cert against the IP.
    resolved = ssrf.check_url(f"https://127.0.0.1:{tls_server.server_port}/host", allow_private=True)
    with new_client(timeout=2.0, verify=tls_server.ca) as client:
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            client.get(resolved.connect_url, headers={"Host": f"media.example:{tls_server.server_port}"})


# --- overall deadline and cancel: a trickling source must not hold a worker forever -------------------------


def _timed_fetch(url, tmp_path, **kwargs):
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        fetch(url, tmp_path / "source.mp4", **kwargs)
    return info.value, time.monotonic() - started


def test_deadline_stops_a_fast_trickle(server, tmp_path):
    # A byte every 0.1 s: the per-read timeout (1 s) never fires, only the total deadline can end it.
    exc, elapsed = _timed_fetch(server.url("/trickle/0.1"), tmp_path, settings=make_settings(tmp_path),
                                deadline_s=1.0)
    assert exc.message == "source download took longer than 1 s"
    assert type(exc) is SourceError
    assert 1.0 <= elapsed < 2.0
    assert server.trickled >= 5  # it really was downloading
    assert leftovers(tmp_path) == []


def test_deadline_interrupts_a_blocked_read(server, tmp_path):
    # A byte every 20 s under a 30 s read timeout (the "one byte every 50 s" source, scaled down): the
    # deadline must interrupt the read that is waiting, not wait for the next byte.
    settings = make_settings(tmp_path, source_read_timeout=30.0)
    exc, elapsed = _timed_fetch(server.url("/trickle/20"), tmp_path, settings=settings, deadline_s=1.0)
    assert exc.message == "source download took longer than 1 s"
    assert 1.0 <= elapsed < 2.0
    assert leftovers(tmp_path) == []


def test_deadline_covers_waiting_for_the_response_headers(server, tmp_path):
    settings = make_settings(tmp_path, source_read_timeout=30.0)
    exc, elapsed = _timed_fetch(server.url("/slow-headers"), tmp_path, settings=settings, deadline_s=0.8)
    assert exc.message == "source download took longer than 0.8 s"
    assert elapsed < 1.8
    assert leftovers(tmp_path) == []


class SettingsView:
    """``Settings`` with some attributes overridden or hidden: ``source_total_timeout`` is read with getattr,
    and whether config.Settings has that field yet must not matter here."""

    def __init__(self, inner, hide=(), **overrides):
        self._inner, self._hide, self._overrides = inner, set(hide), overrides

    def __getattr__(self, name):
        if name in self._hide:
            raise AttributeError(name)
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._inner, name)


def _safety_net(seconds: float) -> threading.Event:
    """A cancel event set after ``seconds``: a deadline that is not applied fails the test instead of hanging."""
    event = threading.Event()
    timer = threading.Timer(seconds, event.set)
    timer.daemon = True
    timer.start()
    return event


def test_deadline_defaults_to_the_setting(server, tmp_path):
    settings = SettingsView(make_settings(tmp_path, source_read_timeout=30.0), source_total_timeout=1.0)
    exc, elapsed = _timed_fetch(server.url("/trickle/20"), tmp_path, settings=settings, cancel=_safety_net(5))
    assert exc.message == "source download took longer than 1 s"
    assert elapsed < 2.0


def test_deadline_default_without_the_setting(server, media, tmp_path, monkeypatch):
    # A settings object without source_total_timeout: the 6 h default applies (shortened here to see it).
    from vidmill.sources import http as http_storage

    monkeypatch.setattr(http_storage, "DEFAULT_TOTAL_TIMEOUT", 1.0)
    base = make_settings(tmp_path, source_read_timeout=30.0)
    settings = SettingsView(base, hide={"source_total_timeout"})
    exc, elapsed = _timed_fetch(server.url("/trickle/20"), tmp_path, settings=settings, cancel=_safety_net(5))
    assert exc.message == "source download took longer than 1 s"
    assert elapsed < 2.0
    result = fetch(server.url(f"/media/{MEDIA_NAME}"), tmp_path / "s.mp4", settings=settings)
    assert result.size == (media / MEDIA_NAME).stat().st_size


def test_default_deadline_is_six_hours():
    from vidmill.sources import http as http_storage

    assert http_storage.DEFAULT_TOTAL_TIMEOUT == 6 * 3600


def test_deadline_not_hit_by_a_quick_download(server, media, tmp_path):
    result = fetch(server.url(f"/media/{MEDIA_NAME}"), tmp_path / "s.mp4", settings=make_settings(tmp_path),
                   deadline_s=30, cancel=threading.Event())
    assert result.size == (media / MEDIA_NAME).stat().st_size
    assert leftovers(tmp_path) == ["s.mp4"]


def _cancel_later(event: threading.Event, delay: float) -> list[float]:
    when: list[float] = []

    def fire():
        time.sleep(delay)
        when.append(time.monotonic())
        event.set()

    threading.Thread(target=fire, daemon=True).start()
    return when


@pytest.mark.parametrize("interval", ["0.1", "20"], ids=["fast-trickle", "blocked-read"])
def test_cancel_from_another_thread_stops_the_download(server, tmp_path, interval):
    cancel = threading.Event()
    fired = _cancel_later(cancel, 0.5)
    settings = make_settings(tmp_path, source_read_timeout=30.0)
    exc, _ = _timed_fetch(server.url(f"/trickle/{interval}"), tmp_path, settings=settings, cancel=cancel)
    assert exc.message == "download cancelled"
    assert time.monotonic() - fired[0] < 1.0
    assert leftovers(tmp_path) == []


def test_cancel_while_waiting_for_headers(server, tmp_path):
    cancel = threading.Event()
    fired = _cancel_later(cancel, 0.3)
    settings = make_settings(tmp_path, source_read_timeout=30.0)
    exc, _ = _timed_fetch(server.url("/slow-headers"), tmp_path, settings=settings, cancel=cancel)
    assert exc.message == "download cancelled"
    assert time.monotonic() - fired[0] < 1.0


def test_cancel_before_start_makes_no_request(server, tmp_path):
    cancel = threading.Event()
    cancel.set()
    exc, _ = _timed_fetch(server.url(f"/media/{MEDIA_NAME}"), tmp_path, settings=make_settings(tmp_path),
                          cancel=cancel)
    assert exc.message == "download cancelled"
    assert server.hits == []
    assert leftovers(tmp_path) == []


def test_cancel_interrupts_a_blocked_tls_read(tls_server, resolver, tmp_path):
    resolver.answers["media.example"] = ["127.0.0.1"]
    cancel = threading.Event()
    fired = _cancel_later(cancel, 0.5)
    with new_client(timeout=30.0, verify=tls_server.ca) as client:
        exc, _ = _timed_fetch(f"https://media.example:{tls_server.server_port}/trickle/20", tmp_path,
                              settings=make_settings(tmp_path), cancel=cancel, client=client)
    assert exc.message == "download cancelled"
    assert time.monotonic() - fired[0] < 1.0
    assert leftovers(tmp_path) == []


def test_non_positive_deadline_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="deadline_s"):
        fetch("http://127.0.0.1:9/x", tmp_path / "s.mp4", settings=make_settings(tmp_path), deadline_s=0)

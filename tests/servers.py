"""Real servers for integration tests: vidmill itself (a subprocess), a media origin, a callback receiver."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output readable
        pass


class _ThreadedServer:
    """An http.server on 127.0.0.1 in a daemon thread, as a context manager."""

    def __init__(self, handler, path: str = "", port: int = 0):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class StaticServer(_ThreadedServer):
    """Serves a folder over HTTP on 127.0.0.1 (the "customer's origin" for sources)."""

    def __init__(self, directory: Path):
        super().__init__(lambda *a, **kw: _QuietHandler(*a, directory=str(directory), **kw))


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    form: dict = field(default_factory=dict)
    at: float = field(default_factory=time.perf_counter)  # when it arrived (perf_counter clock)


class CallbackReceiver(_ThreadedServer):
    """Records every POST; answers ``status`` (200 by default, set to 500 to play a broken receiver)."""

    def __init__(self, port: int = 0):
        self.calls: list[Received] = []
        self.status = 200
        self.headers: dict[str, str] = {}  # sent with every answer (e.g. Retry-After)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                receiver.calls.append(Received(self.path, dict(self.headers), body, form))
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(Handler, "/hook", port)

    def events(self, token: str) -> list[str]:
        return [c.form.get("event") for c in self.calls if c.form.get("task_token") == token]


class VidmillServer:
    """``vidmill serve`` in a subprocess on a free port with its own data dir."""

    def __init__(self, data_dir: Path, *, api_key: str = "testkey0123456789", env: dict | None = None,
                 port: int | None = None):
        self.data_dir = data_dir
        self.api_key = api_key
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "VIDMILL_DATA_DIR": str(data_dir),
            "VIDMILL_PORT": str(self.port),
            "VIDMILL_API_KEY": api_key,
            "VIDMILL_ALLOW_PRIVATE_NETWORKS": "1",
            "VIDMILL_WORKERS": "2",
            "VIDMILL_LEASE_SECONDS": "5",
            "VIDMILL_POLL_INTERVAL": "0.2",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "server.log"

    def start(self, timeout: float = 30.0) -> "VidmillServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "vidmill.cli", "serve", "--log-level", "warning"],
                                     env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                     start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vidmill exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"vidmill did not become healthy:\n{self.log.read_text()}")

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

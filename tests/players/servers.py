"""Loopback HTTP servers for the player tests: the media origin (CORS and range requests, or deliberately
not) and the base the player page's origin is built on."""

from __future__ import annotations

import http.server
import os
import re
import sys
import threading
import time
from pathlib import Path

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml",
                 ".ts": "video/mp2t", ".m4s": "video/iso.segment", ".mp4": "video/mp4", ".m4a": "audio/mp4",
                 ".webm": "video/webm", ".key": "application/octet-stream"}


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # players abort fetches they no longer need
            super().handle_error(request, client_address)


class LoopbackServer:
    def __init__(self, handler):
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class FileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def resolve(self) -> Path | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def extra_headers(self) -> None:
        pass

    def do_OPTIONS(self):
        self.send_response(204)
        self.extra_headers()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self.do_GET(body=False)

    def do_GET(self, body: bool = True):
        target = self.resolve()
        if target is None or not target.is_file():
            self.send_response(404)
            self.extra_headers()
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = target.read_bytes()
        start, end = 0, len(data) - 1
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), end) if m.group(2) else end
            else:
                start = max(0, len(data) - int(m.group(2)))
            if start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.extra_headers()
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(target.suffix.lower(), "application/octet-stream"))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-store")
        self.extra_headers()
        self.end_headers()
        if body:
            self.wfile.write(data[start:end + 1])


class MediaServer(LoopbackServer):
    """A static folder on another origin, with range support and (unless ``cors=False``) CORS headers."""

    def __init__(self, root: Path, *, cors: bool = True, hang: tuple[str, ...] = ()):
        """``hang``: paths (from the root, e.g. ``"hls/v360_002.ts"``) answered only after 30 s, as a dead CDN."""
        self.root = Path(root).resolve()
        self.requests: list[str] = []
        server = self

        class Handler(FileHandler):
            def resolve(self):
                path = self.path.split("?", 1)[0]
                server.requests.append(path)
                if path.lstrip("/") in hang:
                    time.sleep(30)
                target = Path(os.path.normpath(server.root / path.lstrip("/")))  # symlinks allowed, ".." not
                return target if target.is_relative_to(server.root) else None

            def extra_headers(self):
                if cors:
                    self.send_header("Access-Control-Allow-Origin", "*")
                    self.send_header("Access-Control-Allow-Headers", "Range")
                    self.send_header("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges")

        super().__init__(Handler)

"""Play adaptive-streaming outputs to their end in headless Chromium with hls.js, dash.js and Shaka Player.

The page and the player's ``dist/`` build come from one loopback origin (:class:`PlayerOrigin`); the media
come from another (vidmill's ``/files/`` route, or :class:`MediaServer` for ladders made in the tests), so
every play also proves the media answer cross-origin requests. :meth:`Players.play` returns a
:class:`Verdict`: ended cleanly, or the player error, media error or stall that stopped it, with the facts
(levels offered, heights rendered, switches, time played, frames decoded).
"""

from __future__ import annotations

import http.server
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page"
MODULES = HERE / "node_modules"
CHROMIUM = "/usr/bin/chromium"
# Flags measured to work on these machines (shared/FACTS.md, "Browsers and players").
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
]
# The dist/ build of each player, served as /dist/<name>.js by the player origin.
DIST = {
    "hls": MODULES / "hls.js" / "dist" / "hls.min.js",
    "dash": MODULES / "dashjs" / "dist" / "dash.all.min.js",
    "shaka": MODULES / "shaka-player" / "dist" / "shaka-player.compiled.js",
}
PLAYERS = tuple(DIST)

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml",
                 ".ts": "video/mp2t", ".m4s": "video/iso.segment", ".mp4": "video/mp4", ".m4a": "audio/mp4",
                 ".webm": "video/webm", ".key": "application/octet-stream"}


def missing_installs() -> list[str]:
    """What `make test` should have installed and did not (so a test says so instead of timing out)."""
    missing = [] if os.access(CHROMIUM, os.X_OK) else [f"{CHROMIUM} (Debian package chromium)"]
    missing += [f"{p} (npm ci in tests/players)" for p in DIST.values() if not p.is_file()]
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip, the test extra)")
    return missing


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # players abort fetches they no longer need
            super().handle_error(request, client_address)


class _Server:
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


class _Handler(http.server.BaseHTTPRequestHandler):
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


class PlayerOrigin(_Server):
    """The origin of the test page: ``/`` (page/index.html), ``/harness.js`` and ``/dist/<player>.js``."""

    def __init__(self):
        routes = {"/": PAGE / "index.html", "/harness.js": PAGE / "harness.js"}
        routes.update({f"/dist/{name}.js": path for name, path in DIST.items()})

        class Handler(_Handler):
            def resolve(self):
                return routes.get(self.path.split("?", 1)[0])

        super().__init__(Handler)


class MediaServer(_Server):
    """A static folder on another origin, with range support and (unless ``cors=False``) CORS headers."""

    def __init__(self, root: Path, *, cors: bool = True, hang: tuple[str, ...] = ()):
        """``hang``: paths (from the root, e.g. ``"hls/v360_002.ts"``) answered only after 30 s, as a dead CDN."""
        self.root = Path(root).resolve()
        self.requests: list[str] = []
        server = self

        class Handler(_Handler):
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


# Non-fatal reports that are not a fault of the media: hls.js 1.7's heuristic that fires when an FFmpeg TS audio
# fragment lands on an already-buffered range, its internal abort of a load made moot by a switch, and a
# momentary low buffer at 4x speed (a real stall is judged by the harness's own no-progress timer).
# One more, narrowly: hls.js seeking at time 0 to the start of the buffer plus its 0.1 s padding, at most
# 0.25 s in. TS segments whose video starts after its first decode time (B-frames: PTS 0.08 s after DTS)
# give a buffer that starts at 0.08 s, and now and then hls.js jumps to 0.18 s rather than waiting.
# Everything else a player reports, fatal or not, fails the play (a hole later on fails as well).
BENIGN = {("hls", "bufferAppendNoProgress"), ("hls", "bufferStalledError"), ("hls", "aborted")}
START_HOLE = re.compile(r"seeking from 0 to (\d+(?:\.\d+)?)$")


def _benign(player: str, error: dict) -> bool:
    details = error.get("details")
    if not isinstance(details, str):
        return False
    if (player, details) == ("hls", "bufferSeekOverHole") and not error.get("fatal"):
        m = START_HOLE.search(str(error.get("reason") or ""))
        return bool(m) and float(m.group(1)) <= 0.25
    return (player, details) in BENIGN


# Share of the timeline's frames that must go through the decoder (shown or dropped at 4x). dash.js is asked
# to switch with forceReplace (else its switches lag behind a short clip), which drops a few frames at each
# switch when the buffered media ahead are replaced.
MIN_DECODED = {"hls": 0.95, "shaka": 0.95, "dash": 0.85}


@dataclass
class Verdict:
    """What one play showed. ``ok`` only if it ended, covered the whole timeline and met no error or stall."""

    player: str
    url: str
    outcome: str  # ended | player-error | media-error | stall | timeout | play-refused
    detail: object
    version: str | None
    duration: float | None
    current_time: float
    played: list[list[float]]
    levels: list[dict]
    heights: list[int]
    notes: list[dict]
    switches_asked: list[dict]
    errors: list[dict]
    frames: dict | None
    wall: float
    page_errors: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out = []
        if self.outcome != "ended":
            out.append(f"{self.outcome}: {self.detail}")
        out += [f"player error: {e}" for e in self.errors if not _benign(self.player, e)]
        out += [f"page error: {e}" for e in self.page_errors]
        if self.outcome == "ended":
            if not self.duration:
                out.append("no duration")
            else:
                if self.current_time < self.duration - 0.25:
                    out.append(f"ended at {self.current_time:.3f} s of {self.duration:.3f} s")
                gaps = self.gaps()
                if gaps:
                    out.append(f"timeline not played through: holes {gaps}")
        return out

    @property
    def warnings(self) -> list[dict]:
        return [e for e in self.errors if _benign(self.player, e)]

    @property
    def ok(self) -> bool:
        return not self.problems

    def decoded_enough(self, fps: float) -> bool:
        """Enough frames went through the decoder for ``fps`` over the whole duration, and none was corrupt."""
        need = MIN_DECODED[self.player] * fps * (self.duration or 0)
        return bool(self.frames) and self.frames["total"] >= need and self.frames["corrupted"] == 0

    def gaps(self, tolerance: float = 0.25) -> list[tuple[float, float]]:
        """Stretches of [0, duration] that were never played (a player that skipped a broken segment)."""
        holes, reached = [], 0.0
        for start, end in sorted(self.played):
            if start > reached + tolerance:
                holes.append((round(reached, 3), round(start, 3)))
            reached = max(reached, end)
        if self.duration and reached < self.duration - tolerance:
            holes.append((round(reached, 3), round(self.duration, 3)))
        return holes

    def summary(self) -> str:
        return (f"{self.version} {self.url}: {self.outcome} at {self.current_time:.2f}/{self.duration} s, "
                f"heights {self.heights}, {len(self.switches_asked)} switches asked, frames {self.frames}, "
                f"{self.wall:.1f} s wall; problems: {self.problems or 'none'}; warnings: {self.warnings or 'none'}")


class Players:
    """One headless Chromium for a whole session; each :meth:`play` gets a fresh context and page."""

    def __init__(self):
        self._pw = None
        self.browser = None
        self.origin = PlayerOrigin()

    def __enter__(self):
        from playwright.sync_api import sync_playwright

        self.origin.__enter__()
        self._pw = sync_playwright().start()
        try:
            self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception:
            self._pw.stop()
            self.origin.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.browser.close()
        finally:
            self._pw.stop()
            self.origin.__exit__(*exc)

    def play(self, player: str, url: str, *, rate: float = 4.0, switch_every: float = 1.5, buffer_ahead: float = 1.0,
             stall_seconds: float = 3.0, startup_seconds: float = 15.0, timeout_seconds: float = 60.0) -> Verdict:
        """Play ``url`` muted with ``player`` (hls | dash | shaka) until it ends, fails or stalls.

        ``switch_every`` (seconds of media) forces a switch to the next rung that often, starting from the
        lowest, so every rung gets played (0 leaves the choice to the player's ABR); ``buffer_ahead`` (seconds
        of media a player may fetch ahead) keeps those switches close to when they were asked for.
        """
        if player not in DIST:
            raise ValueError(f"unknown player {player!r}")
        context = self.browser.new_context()
        try:
            page = context.new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.goto(self.origin.url + "/")
            opts = {"rate": rate, "switchEvery": switch_every, "bufferAhead": buffer_ahead, "stallSeconds": stall_seconds,
                    "startupSeconds": startup_seconds, "timeoutSeconds": timeout_seconds}
            st = page.evaluate("([p, u, o]) => vmPlay(p, u, o)", [player, url, opts])
        finally:
            context.close()
        return Verdict(player=player, url=url, outcome=st["outcome"], detail=st["detail"], version=st["version"],
                       duration=st["duration"], current_time=st["currentTime"], played=st["played"],
                       levels=st["levels"], heights=st["heights"], notes=st["notes"],
                       switches_asked=st["switchesAsked"], errors=st["errors"], frames=st["frames"],
                       wall=st["wall"], page_errors=page_errors)

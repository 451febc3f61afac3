"""Play adaptive-streaming outputs to their end in headless Chromium with hls.js, dash.js and Shaka Player.

The page and the player's ``dist/`` build come from one loopback origin (:class:`PlayerOrigin`); the media
come from another (vidmill's ``/files/`` route, or :class:`MediaServer` for ladders made in the tests), so
every play also proves the media answer cross-origin requests. :meth:`Players.play` returns a
:class:`Verdict`: ended cleanly, or the player error, media error or stall that stopped it, with the facts
(levels offered, heights rendered, switches, time played, frames decoded).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.players.servers import FileHandler, LoopbackServer

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


def missing_installs() -> list[str]:
    """What `make test` should have installed and did not (so a test says so instead of timing out)."""
    missing = [] if os.access(CHROMIUM, os.X_OK) else [f"{CHROMIUM} (Debian package chromium)"]
    missing += [f"{p} (npm ci in tests/players)" for p in DIST.values() if not p.is_file()]
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip, the test extra)")
    return missing


class PlayerOrigin(LoopbackServer):
    """The origin of the test page: ``/`` (page/index.html), ``/harness.js`` and ``/dist/<player>.js``."""

    def __init__(self):
        routes = {"/": PAGE / "index.html", "/harness.js": PAGE / "harness.js"}
        routes.update({f"/dist/{name}.js": path for name, path in DIST.items()})

        class Handler(FileHandler):
            def resolve(self):
                return routes.get(self.path.split("?", 1)[0])

        super().__init__(Handler)


# Non-fatal reports that are not a fault of the media: hls.js 1.7's heuristic that fires when an FFmpeg TS audio
# fragment lands on an already-buffered range, its internal abort of a load made moot by a switch, and a
# momentary low buffer at 4x speed (a real stall is judged by the harness's own no-progress timer).
# One more, narrowly: hls.js seeking at time 0 over a hole of at most 0.25 s (its 0.1 s padding included) in
# a TS fragment. hls.js starts a TS timeline at the lowest DTS of its tracks ("to prevent negative
# timestamps"), so with B-frames the first video frame is shown 0.08 s after it, and now and then hls.js jumps to
# 0.18 s rather than waiting. TS cannot show a reordered frame at its decode time; fMP4 can (vidmill writes
# negative composition offsets), so a start hole in an fMP4 fragment fails the play.
# Everything else a player reports, fatal or not, fails the play (a hole later on fails as well).
BENIGN = {("hls", "bufferAppendNoProgress"), ("hls", "bufferStalledError"), ("hls", "aborted")}
START_HOLE = re.compile(r"seeking from 0 to (\d+(?:\.\d+)?)$")


def _benign(player: str, error: dict) -> bool:
    details = error.get("details")
    if not isinstance(details, str):
        return False
    if (player, details) == ("hls", "bufferSeekOverHole") and not error.get("fatal"):
        m = START_HOLE.search(str(error.get("reason") or ""))
        ts = str(error.get("url") or "").split("?", 1)[0].endswith(".ts")
        return bool(m) and float(m.group(1)) <= 0.25 and ts
    return (player, details) in BENIGN


# Share of the timeline's frames that must go through the decoder (shown or dropped at 4x). Every player
# switches without replacing what it has buffered (dash.js did replace it, with forceReplace, and Chromium then
# decoded only 61-84% of the frames), so every frame of the timeline is decoded once.
# Holes, errors and an early end are judged apart from this.
MIN_DECODED = {"hls": 0.95, "shaka": 0.95, "dash": 0.95}


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
    ended_by: str | None = None  # "media element" ("ended" event) or the player's own end (dash.js)

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
        return (f"{self.version} {self.url}: {self.outcome} ({self.ended_by}) at {self.current_time:.2f}/{self.duration} s, "
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

    def play(self, player: str, url: str, *, rate: float = 4.0, switch_every: float = 1.5, buffer_ahead: float = 2.0,
             stall_seconds: float = 6.0, startup_seconds: float = 15.0, timeout_seconds: float = 60.0) -> Verdict:
        """Play ``url`` muted with ``player`` (hls | dash | shaka) until it ends, fails or stalls.

        ``switch_every`` (seconds of media) forces a switch to the next rung that often, starting from the
        lowest, so every rung gets played (0 leaves the choice to the player's ABR). No player replaces what
        it has buffered, so a switch shows from the next segment it fetches, and the next switch waits until
        the last one reached the screen (else, at 4x, dash.js had one overtaken by the next); ``buffer_ahead`` (seconds
        of media a player may fetch ahead) keeps those switches close to when they were asked for (1 s let
        Chromium at 4x wait for more than hls.js would fetch: stalls on a busy machine; 2 s did not).
        ``stall_seconds`` without progress is a stall: generous, as the machine may be shared and busy.
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
                       wall=st["wall"], page_errors=page_errors, ended_by=st["endedBy"])

"""The player harness itself: FFmpeg-made ladders play to the end in all three players, and broken ones fail.

These prove that the checks the vidmill output tests rely on can pass and can fail.
"""

from __future__ import annotations

import shutil

import pytest

from tests.players.harness import MediaServer
from tests.players.ladders import HEIGHTS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PLAYS = [("hls_ts/master.m3u8", "hls"), ("hls_ts/master.m3u8", "shaka"),
         ("hls_fmp4/master.m3u8", "hls"), ("hls_fmp4/master.m3u8", "shaka"),
         ("dash/manifest.mpd", "dash"), ("dash/manifest.mpd", "shaka")]


@pytest.mark.parametrize("manifest,player", PLAYS, ids=[f"{m.split('/')[0]}-{p}" for m, p in PLAYS])
def test_ffmpeg_ladder_plays_to_the_end(players, ladder_server, manifest, player):
    v = players.play(player, f"{ladder_server.url}/{manifest}", switch_every=2.0)
    assert v.ok, v.summary()
    assert 5.0 < v.duration < 5.6, v.summary()
    assert v.played and v.current_time >= v.duration - 0.1
    assert sorted({lv["height"] for lv in v.levels}) == sorted(HEIGHTS)
    assert sorted(v.heights) == sorted(HEIGHTS), f"every rung should have reached the screen: {v.summary()}"
    assert len(v.switches_asked) >= 2
    # 25 fps: every frame of the timeline went through the decoder (dropped ones too), none corrupted
    assert v.decoded_enough(fps=25), v.summary()
    assert "127.0.0.1" in v.url and str(ladder_server.port) in v.url and ladder_server.port != players.origin.port


def _broken_copy(ladder_dir, tmp_path, kind, break_files):
    root = tmp_path / "broken"
    shutil.copytree(ladder_dir / kind, root / kind)
    for pattern in break_files:
        for f in (root / kind).glob(pattern):
            break_files[pattern](f)
    return root


def _garble(f):
    data = bytearray(f.read_bytes())
    data[len(data) // 4:] = bytes((i * 131 + 7) % 256 for i in range(len(data) - len(data) // 4))
    f.write_bytes(bytes(data))


BROKEN = [("hls_ts", "master.m3u8", "hls", "v*_003.ts"), ("hls_fmp4", "master.m3u8", "shaka", "v*_003.m4s"),
          ("dash", "manifest.mpd", "dash", "chunk-stream[01]-00004.m4s")]


@pytest.mark.parametrize("kind,manifest,player,pattern", BROKEN, ids=[f"{k}-{p}" for k, _, p, _ in BROKEN])
def test_garbled_segment_fails(players, ladder_dir, tmp_path, kind, manifest, player, pattern):
    """Three quarters of one video segment (every rung) overwritten: the play must not pass."""
    root = _broken_copy(ladder_dir, tmp_path, kind, {pattern: _garble})
    with MediaServer(root) as server:
        v = players.play(player, f"{server.url}/{kind}/{manifest}", switch_every=2.0)
    print(v.summary())
    assert not v.ok, f"a garbled segment went unnoticed: {v.summary()}"
    assert v.outcome in ("media-error", "player-error"), v.summary()


MISSING = [("hls_ts", "master.m3u8", "hls", "v*_002.ts"), ("dash", "manifest.mpd", "shaka", "chunk-stream[01]-00003.m4s")]


@pytest.mark.parametrize("kind,manifest,player,pattern", MISSING, ids=[f"{k}-{p}" for k, _, p, _ in MISSING])
def test_missing_segment_fails(players, ladder_dir, tmp_path, kind, manifest, player, pattern):
    root = _broken_copy(ladder_dir, tmp_path, kind, {pattern: lambda f: f.unlink()})
    with MediaServer(root) as server:
        v = players.play(player, f"{server.url}/{kind}/{manifest}", switch_every=2.0)
    print(v.summary())
    assert not v.ok, f"a missing segment went unnoticed: {v.summary()}"
    assert v.outcome == "player-error" and pattern.split("]")[-1].lstrip("v*") in str(v.detail), v.summary()


@pytest.mark.parametrize("player,manifest", [("hls", "hls_fmp4/master.m3u8"), ("dash", "dash/manifest.mpd"),
                                             ("shaka", "dash/manifest.mpd")])
def test_media_without_cors_fails(players, ladder_dir, player, manifest):
    """The page is on another origin than the media: without CORS headers no player may load them."""
    with MediaServer(ladder_dir, cors=False) as server:
        v = players.play(player, f"{server.url}/{manifest}")
    print(v.summary())
    assert v.outcome == "player-error", v.summary()


def test_stall_is_detected(players, ladder_dir):
    """A segment that never arrives (both rungs) ends the play as a stall within seconds, not as a pass."""
    with MediaServer(ladder_dir, hang=("hls_fmp4/v360_002.m4s", "hls_fmp4/v216_002.m4s")) as server:
        v = players.play("hls", f"{server.url}/hls_fmp4/master.m3u8", switch_every=0, stall_seconds=2.0)
    assert v.outcome == "stall", v.summary()
    assert 1.5 < v.current_time < 2.5, v.summary()

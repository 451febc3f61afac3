"""The verdict rules on their own (no browser): what passes and what fails a play."""

from __future__ import annotations

from tests.players.harness import Verdict


def verdict(**kw) -> Verdict:
    base = dict(player="hls", url="http://127.0.0.1:1/m.m3u8", outcome="ended", detail=None, version="hls.js",
                duration=5.0, current_time=5.0, played=[[0.0, 5.0]], levels=[], heights=[360], notes=[],
                switches_asked=[], errors=[], frames={"total": 125, "dropped": 0, "corrupted": 0}, wall=1.0)
    return Verdict(**{**base, **kw})


def test_a_clean_end_passes():
    assert verdict().ok and verdict().decoded_enough(fps=25)


def test_stall_error_and_early_end_fail():
    assert verdict(outcome="stall", detail="no progress for 3 s").problems == ["stall: no progress for 3 s"]
    assert not verdict(outcome="player-error", detail={"fatal": True}).ok
    assert not verdict(current_time=4.0, played=[[0.0, 4.0]]).ok
    assert not verdict(page_errors=["TypeError: x is undefined"]).ok


def test_a_skipped_stretch_fails_even_if_it_ended():
    v = verdict(played=[[0.0, 2.0], [3.0, 5.0]])
    assert v.gaps() == [(2.0, 3.0)] and not v.ok
    assert verdict(played=[[0.2, 5.0]]).ok  # under 0.25 s at the start: the hls.js start hole below


def test_non_fatal_errors_fail_unless_known_benign():
    hole = {"details": "bufferSeekOverHole", "fatal": False}
    start = {**hole, "reason": "fragment loaded with buffer holes, seeking from 0 to 0.18", "url": "http://h/v_000.ts"}
    later = {**hole, "reason": "fragment loaded with buffer holes, seeking from 2.4 to 2.9"}
    big = {**hole, "reason": "fragment loaded with buffer holes, seeking from 0 to 1.2"}
    assert verdict(errors=[start, {"details": "bufferAppendNoProgress", "fatal": False}]).ok
    assert not verdict(errors=[later]).ok and not verdict(errors=[big]).ok
    assert not verdict(errors=[{**start, "url": "http://h/v_000.m4s"}]).ok  # fMP4 shows its first frame at 0
    assert not verdict(errors=[{**start, "url": None}]).ok
    assert not verdict(errors=[{"details": "fragParsingError", "fatal": False}]).ok
    assert not verdict(player="shaka", errors=[{"details": "bufferAppendNoProgress", "fatal": False}]).ok


def test_too_few_decoded_frames_fail():
    assert not verdict(frames={"total": 100, "dropped": 0, "corrupted": 0}).decoded_enough(fps=25)
    assert not verdict(frames={"total": 125, "dropped": 0, "corrupted": 1}).decoded_enough(fps=25)
    assert verdict(player="dash", frames={"total": 124, "dropped": 40, "corrupted": 0}).decoded_enough(fps=25)
    assert not verdict(player="dash", frames={"total": 96, "dropped": 0, "corrupted": 0}).decoded_enough(fps=25)

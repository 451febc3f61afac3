"""engine/fmp4.py on hand-built boxes: the cases FFmpeg's own files (tests in test_streaming.py) do not reach."""

from __future__ import annotations

import struct

import pytest

from vidmill.engine.fmp4 import Fmp4Error, Track, boxes, fragment_keyframes, video_track

NON_SYNC = 0x00010000


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big"), *payload)


def trak(track_id: int, handler: bytes, timescale: int) -> bytes:
    tkhd = full(b"tkhd", 0, 3, struct.pack(">IIII", 0, 0, track_id, 0), bytes(64))
    mdhd = full(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, 0), bytes(4))
    hdlr = full(b"hdlr", 0, 0, bytes(4), handler, bytes(12), b"x\0")
    return box(b"trak", tkhd, box(b"mdia", mdhd, hdlr))


def init(trex_flags: int = NON_SYNC) -> bytes:
    trex = full(b"trex", 0, 0, struct.pack(">IIIII", 2, 1, 0, 0, trex_flags))
    return box(b"ftyp", b"isom") + box(b"moov", trak(1, b"soun", 48000), trak(2, b"vide", 90000),
                                       box(b"mvex", trex))


def moof(track_id: int, sizes: list[int], flags: list[int] | None, *, first_flags: int | None = None,
         decode_time: int = 0, cto: int = 0, base_is_moof: bool = True) -> bytes:
    """One traf whose trun lists ``sizes`` (and per-sample ``flags`` when given); data_offset filled in later."""
    tfhd = full(b"tfhd", 0, 0x020000, struct.pack(">I", track_id))  # default-base-is-moof, as FFmpeg writes
    tfdt = full(b"tfdt", 1, 0, struct.pack(">Q", decode_time))
    tflags = 0x01 | 0x200 | 0x800 | (0x400 if flags else 0) | (0x04 if first_flags is not None else 0)
    head = struct.pack(">Ii", len(sizes), 0) + (struct.pack(">I", first_flags) if first_flags is not None else b"")
    rows = b"".join(struct.pack(">I", s) + (struct.pack(">I", flags[i]) if flags else b"") + struct.pack(">i", cto)
                    for i, s in enumerate(sizes))
    return box(b"moof", full(b"mfhd", 0, 0, struct.pack(">I", 1)),
               box(b"traf", tfhd, tfdt, full(b"trun", 1, tflags, head, rows)))


def fragment(track_id: int, sizes: list[int], flags: list[int] | None, **kw) -> bytes:
    m = moof(track_id, sizes, flags, **kw)
    at = m.index(b"trun") + 4 + 4 + 4  # after size/type, version/flags, sample count: the data offset
    m = m[:at] + struct.pack(">i", len(m) + 8) + m[at + 4:]
    return m + box(b"mdat", bytes(sum(sizes)))


def test_video_track_finds_the_vide_handler_and_trex_defaults():
    assert video_track(init()) == Track(track_id=2, timescale=90000, default_flags=NON_SYNC)


def test_keyframe_range_runs_from_moof_to_the_end_of_the_first_sample():
    first = fragment(2, [100, 30], [0, NON_SYNC], decode_time=90000, cto=3000)
    second = fragment(2, [80], [0], decode_time=180000)
    segment = box(b"styp", b"msdh") + first + second
    keys = fragment_keyframes(segment, video_track(init()))
    m1 = 12  # after the styp box
    m2 = m1 + len(first)
    assert keys[0].moof == m1 and keys[0].end == m1 + len(first) - 30  # moof + mdat header + the 100-byte keyframe
    assert keys[1].moof == m2 and keys[1].end == m2 + len(second)
    assert [k.seconds for k in keys] == [pytest.approx(1 + 3000 / 90000), 2.0]


def test_a_fragment_that_opens_on_a_non_sync_sample_is_not_listed():
    segment = fragment(2, [50, 60], [NON_SYNC, 0])
    assert fragment_keyframes(segment, video_track(init())) == []


def test_flags_fall_back_to_first_sample_flags_then_trex():
    track = video_track(init())
    assert len(fragment_keyframes(fragment(2, [10], None, first_flags=0), track)) == 1
    assert fragment_keyframes(fragment(2, [10], None), track) == []  # trex says non-sync
    assert len(fragment_keyframes(fragment(2, [10], None), video_track(init(trex_flags=0)))) == 1


def test_other_tracks_fragments_are_ignored():
    assert fragment_keyframes(fragment(1, [10], [0]), video_track(init())) == []


def test_truncated_and_missing_boxes_raise():
    with pytest.raises(Fmp4Error, match="runs past"):
        list(boxes(box(b"moof", bytes(20))[:-4]))
    with pytest.raises(Fmp4Error, match="no moov"):
        video_track(box(b"ftyp", b"isom"))
    with pytest.raises(Fmp4Error, match="no video track"):
        video_track(box(b"moov", trak(1, b"soun", 48000)))


def test_64_bit_box_sizes_are_read():
    large = struct.pack(">I4sQ", 1, b"free", 16 + 4) + b"abcd"
    assert list(boxes(large + box(b"skip"))) == [(b"free", 0, 20, 16), (b"skip", 20, 8, 8)]

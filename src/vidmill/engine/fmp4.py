"""Just enough ISO BMFF (fragmented MP4) reading to find where each keyframe of an HLS fMP4 segment lies.

An I-frame playlist entry over fMP4 is a byte range that a player hands to its demuxer after the init segment:
it must hold the ``moof`` (which describes the samples) and reach the end of the keyframe's sample data in the
``mdat`` that follows. This module reads the boxes FFmpeg's mov muxer writes (moov/trak/mdia/mdhd/hdlr,
mvex/trex, moof/traf/tfhd/tfdt/trun; ISO/IEC 14496-12) and nothing more; it never rewrites a file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_CONTAINERS = {b"moov", b"trak", b"mdia", b"mvex", b"moof", b"traf"}
_NON_SYNC = 0x00010000  # sample_is_non_sync_sample in a sample's flags


class Fmp4Error(ValueError):
    """Raised when a file is not the fragmented MP4 this module expects (truncated box, missing track)."""


def boxes(data: bytes, start: int = 0, end: int | None = None):
    """Yield (type, offset, size, header size) of each box between ``start`` and ``end``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Fmp4Error(f"truncated {kind!r} box at {pos}")
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Fmp4Error(f"{kind.decode('latin-1')!r} box at {pos} runs past its parent ({size} bytes)")
        yield kind, pos, size, header
        pos += size


def _child(data: bytes, offset: int, size: int, header: int, kind: bytes):
    return next(((o, s, h) for k, o, s, h in boxes(data, offset + header, offset + size) if k == kind), None)


def _children(data: bytes, offset: int, size: int, header: int, kind: bytes):
    return [(o, s, h) for k, o, s, h in boxes(data, offset + header, offset + size) if k == kind]


@dataclass(frozen=True)
class Track:
    track_id: int
    timescale: int
    default_flags: int  # from trex


class _Fields:
    """The optional fields of a full box, read in order: each is there only when its flag is set."""

    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos

    def take(self, present: int, fmt: str = ">I", default=None):
        if not present:
            return default
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def skip(self, present: int, size: int = 4) -> None:
        self.pos += size if present else 0


def video_track(init: bytes) -> Track:
    """The first video track of an init segment (``moov``), with its timescale and trex default flags."""
    moov = next(((o, s, h) for k, o, s, h in boxes(init) if k == b"moov"), None)
    if moov is None:
        raise Fmp4Error("the init segment has no moov box")
    defaults: dict[int, int] = {}
    mvex = _child(init, *moov, b"mvex")
    if mvex is not None:
        for o, s, h in _children(init, *mvex, b"trex"):
            track_id, _, _, _, flags = struct.unpack_from(">IIIII", init, o + h + 4)
            defaults[track_id] = flags
    for trak in _children(init, *moov, b"trak"):
        tkhd = _child(init, *trak, b"tkhd")
        mdia = _child(init, *trak, b"mdia")
        if tkhd is None or mdia is None:
            continue
        hdlr = _child(init, *mdia, b"hdlr")
        if hdlr is None or init[hdlr[0] + hdlr[2] + 8:hdlr[0] + hdlr[2] + 12] != b"vide":
            continue
        o, _, h = tkhd
        track_id = struct.unpack_from(">I", init, o + h + (20 if init[o + h] == 1 else 12))[0]
        o, _, h = _child(init, *mdia, b"mdhd")
        timescale = struct.unpack_from(">I", init, o + h + (20 if init[o + h] == 1 else 12))[0]
        return Track(track_id, timescale, defaults.get(track_id, 0))
    raise Fmp4Error("the init segment has no video track")


@dataclass(frozen=True)
class Keyframe:
    moof: int  # where the fragment describing the keyframe starts
    end: int  # one past the keyframe's last byte in the mdat
    seconds: float  # its presentation time (decode time + composition offset), before any edit list

    @property
    def length(self) -> int:
        return self.end - self.moof


def fragment_keyframes(segment: bytes, track: Track) -> list[Keyframe]:
    """The keyframe that opens each fragment of ``track`` in a media segment. A keyframe later in a fragment is
    not listed: a range from its ``moof`` would carry the frames before it, which it does not depend on but a
    player would decode first."""
    out: list[Keyframe] = []
    for kind, moof, size, header in boxes(segment):
        if kind != b"moof":
            continue
        for traf in _children(segment, moof, size, header, b"traf"):
            o, _, h = _child(segment, *traf, b"tfhd")
            flags = int.from_bytes(segment[o + h + 1:o + h + 4], "big")
            track_id = struct.unpack_from(">I", segment, o + h + 4)[0]
            if track_id != track.track_id:
                continue
            fields = _Fields(segment, o + h + 8)
            # default-base-is-moof, and the rule for the first traf without a base offset
            base = fields.take(flags & 0x01, ">Q", moof)
            fields.skip(flags & 0x02)  # sample description index
            fields.skip(flags & 0x08)  # default sample duration
            default_size = fields.take(flags & 0x10)
            default_flags = fields.take(flags & 0x20)
            tfdt = _child(segment, *traf, b"tfdt")
            decode_time = 0
            if tfdt is not None:
                o, _, h = tfdt
                decode_time = struct.unpack_from(">Q" if segment[o + h] == 1 else ">I", segment, o + h + 4)[0]
            trun = _child(segment, *traf, b"trun")
            if trun is None:
                continue
            o, _, h = trun
            version, tflags = segment[o + h], int.from_bytes(segment[o + h + 1:o + h + 4], "big")
            count = struct.unpack_from(">I", segment, o + h + 4)[0]
            fields = _Fields(segment, o + h + 8)
            data_offset = fields.take(tflags & 0x01, ">i", 0)
            first_flags = fields.take(tflags & 0x04)
            if count == 0:
                continue
            fields.skip(tflags & 0x100)  # the first sample's duration
            sample_size = fields.take(tflags & 0x200, default=default_size)
            sample_flags = fields.take(tflags & 0x400, default=default_flags)
            cto = fields.take(tflags & 0x800, ">i" if version else ">I", 0)
            if first_flags is not None:
                sample_flags = first_flags
            if sample_flags is None:
                sample_flags = track.default_flags
            if sample_size is None:
                raise Fmp4Error(f"the fragment at {moof} gives no size for its first sample")
            if sample_flags & _NON_SYNC:
                continue
            start = base + data_offset
            out.append(Keyframe(moof, start + sample_size, (decode_time + cto) / track.timescale))
    return out

"""Timestamps of fragmented MP4 as a player's MSE reads them (ISO BMFF boxes, not FFmpeg's demuxer, which moves
the presentation times of a track with negative composition offsets by the largest of them)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[start + 8:start + 16])[0], 16
        elif size == 0:
            size = end - start
        yield kind.decode("latin-1"), start + header, start + size
        start += size


def _find(data: bytes, path: list[str], start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    out = []
    for kind, body, stop in _boxes(data, start, end):
        if kind == path[0]:
            out += [(body, stop)] if len(path) == 1 else _find(data, path[1:], body, stop)
    return out


@dataclass
class Track:
    kind: str  # "vide" | "soun"
    timescale: int
    movie_timescale: int
    edits: list[tuple[int, int]]  # (segment duration in movie units, media time in track units; -1 = empty)

    @property
    def shift(self) -> float:
        """Seconds the edit list moves the media: + for empty edits (later), - for skipped media time."""
        at = 0.0
        for duration, media_time in self.edits:
            if media_time == -1:
                at += duration / self.movie_timescale
            else:
                return at - media_time / self.timescale
        return at


def track(init: Path) -> Track:
    """The first track of an init segment (its only one, or the video of a muxed rendition)."""
    data = init.read_bytes()
    (mvhd, _), = _find(data, ["moov", "mvhd"])
    movie_scale = struct.unpack(">I", data[mvhd + (20 if data[mvhd] == 1 else 12):][:4])[0]
    (trak, trak_end), *_ = _find(data, ["moov", "trak"])
    (mdhd, _), = _find(data, ["mdia", "mdhd"], trak, trak_end)
    scale = struct.unpack(">I", data[mdhd + (20 if data[mdhd] == 1 else 12):][:4])[0]
    (hdlr, _), = _find(data, ["mdia", "hdlr"], trak, trak_end)
    edits = []
    for elst, _ in _find(data, ["edts", "elst"], trak, trak_end):
        v1 = data[elst] == 1
        count, = struct.unpack(">I", data[elst + 4:elst + 8])
        at = elst + 8
        for _ in range(count):
            edits.append(struct.unpack(">Qq" if v1 else ">Ii", data[at:at + (16 if v1 else 8)]))
            at += 20 if v1 else 12
    return Track(data[hdlr + 8:hdlr + 12].decode(), scale, movie_scale, edits)


def samples(segment: Path, timescale: int) -> list[tuple[float, float, float]]:
    """(decode time, composition time, duration) in seconds of every sample of a media segment's first track."""
    data = segment.read_bytes()
    out = []
    for traf, traf_end in _find(data, ["moof", "traf"])[:1]:
        (tfhd, _), = _find(data, ["tfhd"], traf, traf_end)
        flags = int.from_bytes(data[tfhd + 1:tfhd + 4], "big")
        at = tfhd + 8 + (8 if flags & 1 else 0) + (4 if flags & 2 else 0)
        default = struct.unpack(">I", data[at:at + 4])[0] if flags & 8 else 0
        (tfdt, _), = _find(data, ["tfdt"], traf, traf_end)
        dts = struct.unpack(">Q" if data[tfdt] == 1 else ">I", data[tfdt + 4:tfdt + (12 if data[tfdt] == 1 else 8)])[0]
        for trun, _ in _find(data, ["trun"], traf, traf_end):
            flags = int.from_bytes(data[trun + 1:trun + 4], "big")
            count, = struct.unpack(">I", data[trun + 4:trun + 8])
            at = trun + 8 + (4 if flags & 1 else 0) + (4 if flags & 4 else 0)
            for _ in range(count):
                duration, offset = default, 0
                if flags & 0x100:
                    duration, = struct.unpack(">I", data[at:at + 4])
                    at += 4
                at += (4 if flags & 0x200 else 0) + (4 if flags & 0x400 else 0)
                if flags & 0x800:
                    offset, = struct.unpack(">i" if data[trun] == 1 else ">I", data[at:at + 4])
                    at += 4
                out.append((dts / timescale, (dts + offset) / timescale, duration / timescale))
                dts += duration
    return out


def first_presentation(init: Path, segment: Path) -> tuple[float, float]:
    """(earliest composition time as stored, the same after the edit list) of a rendition's first segment."""
    t = track(init)
    raw = min(c for _, c, _ in samples(segment, t.timescale))
    return raw, raw + t.shift

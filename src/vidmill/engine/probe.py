"""Probe a local media file with PyAV into ffprobe-shaped JSON, and derive what the planner needs from it.

imageio-ffmpeg ships no ffprobe, so :func:`probe` rebuilds the ``ffprobe -show_format -show_streams -of json``
document from libavformat through PyAV: same key names, same order, and the same types (ffprobe prints
durations, times, bit rates, sizes, sample rates and frame counts as strings; fields it does not know it
leaves out). It reads the headers plus the first video frame (the display matrix of rotated phone video
reaches us on decoded frames), never the whole file.

:func:`media_info` turns that JSON into a :class:`MediaInfo` for the planner; :func:`output_facts` into the
neutral facts vidmill records about an output (dialects in ``api/`` render their own shapes from them).
"""

from __future__ import annotations

import errno
import math
import re
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vidmill.engine.demuxers import FORMAT_WHITELIST, READABLE
from vidmill.errors import ProbeError

# Demuxers that accept files which are not media, or that follow references to other files and URLs
# (playlists: a classic SSRF / local-file-read vector). A source must be one self-contained media file.
_DECODE_PACKETS = 48  # enough for a broken first GOP; h264 with slice threads gives a frame per packet

# libavutil's names (av_color_*_name); "unspecified" values are left out, as ffprobe does in JSON.
_COLOR_RANGE = {1: "tv", 2: "pc"}
_COLOR_SPACE = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
                9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
                13: "chroma-derived-c", 14: "ictcp", 15: "ipt-c2", 16: "ycgco-re", 17: "ycgco-ro"}
_COLOR_TRC = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "linear",
              9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
              14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
_COLOR_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
                    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
_FIELD_ORDER = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
_DISPOSITIONS = ("default", "dub", "original", "comment", "lyrics", "karaoke", "forced", "hearing_impaired",
                 "visual_impaired", "clean_effects", "attached_pic", "timed_thumbnails", "non_diegetic",
                 "captions", "descriptions", "metadata", "dependent", "still_image", "multilayer")
_PCM_BITS = re.compile(r"^pcm_[suf](\d+)")


def probe(path: str | Path) -> dict[str, Any]:
    """ffprobe-compatible ``{"streams": [...], "format": {...}}`` of a local file; ProbeError if not media."""
    path = Path(path)
    if not path.is_file():
        raise ProbeError(f"{path.name}: no such file")
    try:
        # "file:" so a name with a colon is never read as a protocol; no protocol but "file" at all; and
        # only the demuxers vidmill reads sources with, so a playlist is refused before it opens anything.
        container = av.open(f"file:{path.resolve()}", "r", metadata_errors="replace",
                            container_options={"protocol_whitelist": "file", "format_whitelist": FORMAT_WHITELIST})
    except av.FFmpegError as exc:
        if getattr(exc, "errno", None) == errno.EINVAL:  # detected as a demuxer outside the whitelist
            raise ProbeError(f"{path.name} is not in a container vidmill reads ({READABLE})") from exc
        raise ProbeError(f"{path.name} is not readable media: {exc.strerror or exc}") from exc
    with container:
        streams = [_stream_json(container, s) for s in container.streams]
        if not any(s["codec_type"] in ("video", "audio") and s.get("codec_name") for s in streams):
            raise ProbeError(f"{path.name} has no audio or video stream")
        return {"streams": streams, "format": _format_json(container, path)}


def _time(value: float | None) -> str | None:
    return None if value is None else f"{value:f}"


def _q(value: Fraction | None, sep: str = "/") -> str:
    """A rational as ffprobe prints it ("25/1", "16:9"); unknown is "0/0"."""
    return f"{value.numerator}{sep}{value.denominator}" if value else f"0{sep}0"


def _fourcc(tag: int) -> str:
    """av_fourcc_make_string: printable characters as is, the rest as ``[n]``."""
    out = []
    for i in range(4):
        c = (tag >> (8 * i)) & 0xFF
        ch = chr(c)
        out.append(ch if ch.isascii() and (ch.isalnum() or ch in ". -_") else f"[{c}]")
    return "".join(out)


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _format_json(container: Any, path: Path) -> dict[str, Any]:
    return _compact({
        "filename": str(path),
        "nb_streams": len(container.streams),
        "format_name": container.format.name,
        "format_long_name": container.format.long_name,
        "start_time": _time(None if container.start_time is None else container.start_time / 1_000_000),
        "duration": _time(container.duration / 1_000_000 if container.duration else None),
        "size": str(path.stat().st_size),
        "bit_rate": str(container.bit_rate) if container.bit_rate else None,
        "tags": dict(container.metadata) or None,
    })


def _stream_json(container: Any, stream: Any) -> dict[str, Any]:
    cc = stream.codec_context
    try:
        codec = stream.codec if cc is not None else None
    except (AttributeError, ValueError):  # a stream PyAV has no codec object for
        codec, cc = None, None
    d: dict[str, Any] = {"index": stream.index}
    if cc is not None and codec is not None:
        try:  # the descriptor's long name (libdav1d's decoder calls itself "dav1d AV1 decoder by VideoLAN")
            long_name = av.Codec(codec.canonical_name, "r").long_name
        except (av.codec.codec.UnknownCodecError, ValueError):
            long_name = codec.long_name
        tag = int.from_bytes((cc.codec_tag or "").encode("latin-1", "replace").ljust(4, b"\0")[:4], "little")
        d |= {"codec_name": codec.canonical_name, "codec_long_name": long_name, "profile": stream.profile,
              "codec_type": stream.type, "codec_tag_string": _fourcc(tag), "codec_tag": f"0x{tag:04x}"}
    else:
        d["codec_type"] = stream.type
    if stream.type == "video" and cc is not None:
        d |= _video_json(container, stream, cc)
    elif stream.type == "audio" and cc is not None:
        bits = _PCM_BITS.match(d["codec_name"])
        d |= {"sample_fmt": cc.format.name if cc.format else None,
              "sample_rate": str(cc.sample_rate) if cc.sample_rate else None,
              "channels": cc.channels,
              "channel_layout": cc.layout.name if cc.layout and cc.layout.name else None,
              "bits_per_sample": int(bits.group(1)) if bits else
              8 if d["codec_name"] in ("pcm_alaw", "pcm_mulaw") else 0}
    if container.format.flags & av.format.Flags.show_ids.value:
        d["id"] = f"0x{stream.id:x}"
    if stream.type in ("video", "audio"):
        d["r_frame_rate"] = _q(stream.base_rate if stream.type == "video" else None)
        d["avg_frame_rate"] = _q(stream.average_rate if stream.type == "video" else None)
    tb = stream.time_base
    d["time_base"] = _q(tb)
    if stream.start_time is not None and tb:
        d |= {"start_pts": stream.start_time, "start_time": _time(float(stream.start_time * tb))}
    if stream.duration and tb:
        d |= {"duration_ts": stream.duration, "duration": _time(float(stream.duration * tb))}
    bit_rate = cc.bit_rate if cc is not None else None
    d |= {"bit_rate": str(bit_rate) if bit_rate and bit_rate > 0 else None,
          "nb_frames": str(stream.frames) if stream.frames else None,
          "extradata_size": cc.extradata_size if cc is not None and cc.extradata_size else None,
          "disposition": {name: int(bool(stream.disposition & getattr(av.stream.Disposition, name)))
                          for name in _DISPOSITIONS},
          "tags": dict(stream.metadata) or None}
    matrix = d.pop("_displaymatrix", None)
    if matrix is not None:
        d["side_data_list"] = [{"side_data_type": "Display Matrix",
                                "displaymatrix": _matrix_text(matrix),
                                "rotation": int(_matrix_rotation(matrix))}]
    return _compact(d)


def _video_json(container: Any, stream: Any, cc: Any) -> dict[str, Any]:
    sar = stream.sample_aspect_ratio or None
    dar = None
    if sar and cc.width and cc.height:
        dar = Fraction(cc.width * sar.numerator, cc.height * sar.denominator)
        if max(dar.numerator, dar.denominator) > 1024 * 1024:  # av_reduce's bound
            dar = dar.limit_denominator(1024 * 1024)
    d = {
        "width": cc.width, "height": cc.height,
        # ffprobe's decoder context reports coded = display size until a frame is decoded
        "coded_width": cc.width, "coded_height": cc.height,
        "has_b_frames": int(cc.has_b_frames),
        "sample_aspect_ratio": _q(sar, ":") if sar else None,
        "display_aspect_ratio": _q(dar, ":") if dar else None,
        "pix_fmt": cc.pix_fmt,
        "level": cc.level,
        "color_range": _COLOR_RANGE.get(cc.color_range),
        "color_space": _COLOR_SPACE.get(cc.colorspace),
        "color_transfer": _COLOR_TRC.get(cc.color_trc),
        "color_primaries": _COLOR_PRIMARIES.get(cc.color_primaries),
        "field_order": _FIELD_ORDER.get(cc.field_order),
    }
    if not stream.disposition & av.stream.Disposition.attached_pic:
        d["_displaymatrix"] = _first_frame_matrix(container, stream)
    return d


def _first_frame_matrix(container: Any, stream: Any) -> tuple[int, ...] | None:
    """The display matrix the first decodable frame carries (the container's, or one from the bitstream)."""
    decoded = 0
    try:
        for packet in container.demux(stream):
            decoded += 1
            try:
                frames = packet.decode()
            except av.FFmpegError:  # a broken first frame: try the next packet
                frames = []
            for frame in frames:
                for sd in frame.side_data:
                    if sd.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
                        return struct.unpack("<9i", bytes(sd)[:36])
                return None
            if decoded >= _DECODE_PACKETS:
                return None
    except av.FFmpegError:
        pass
    return None


def _matrix_text(m: tuple[int, ...]) -> str:
    """ffprobe's rendering: ``\\n00000000:            0       65536           0\\n...``."""
    rows = [f"{i:08x}: " + "".join(f" {v:11d}" for v in m[3 * i:3 * i + 3]) for i in range(3)]
    return "\n" + "\n".join(rows) + "\n"


def _matrix_rotation(m: tuple[int, ...]) -> float:
    """av_display_rotation_get: counter-clockwise degrees, in (-180, 180]."""
    a, b, c, d = (v / 65536 for v in (m[0], m[1], m[3], m[4]))
    sx, sy = math.hypot(a, c), math.hypot(b, d)
    if not sx or not sy:
        return 0.0
    return -math.degrees(math.atan2(b / sy, a / sx)) + 0.0


@dataclass(frozen=True)
class MediaInfo:
    """What the planner needs to know about a source, from :func:`probe`'s JSON.

    ``width``/``height`` are the stored picture size (before rotation and SAR); ``rotation`` is how far a
    player turns it counter-clockwise (display-matrix convention, as ``-display_rotation``), one of
    0/90/180/270; ``display_width``/``display_height`` are what a viewer sees (SAR applied to the width,
    then rotation). ``dar`` is the stored picture's aspect (``width*sar/height``), before rotation.
    """

    has_video: bool
    has_audio: bool
    duration: float | None
    format_name: str | None
    size_bytes: int | None
    bit_rate: int | None
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    display_width: int | None = None
    display_height: int | None = None
    sar: Fraction = Fraction(1)
    dar: Fraction | None = None
    fps: float | None = None
    video_codec: str | None = None
    video_bit_rate: int | None = None
    pix_fmt: str | None = None
    field_order: str | None = None
    interlaced: bool = False
    color_transfer: str | None = None
    color_primaries: str | None = None
    audio_codec: str | None = None
    audio_channels: int | None = None
    audio_sample_rate: int | None = None
    audio_bit_rate: int | None = None
    subtitle_codecs: tuple[str, ...] = ()


def _num(value: Any, kind: type = float) -> Any:
    try:
        return kind(value) if value not in (None, "", "N/A") else None
    except (TypeError, ValueError):
        return None


def _fraction(text: str | None, sep: str) -> Fraction | None:
    if not text or sep not in text:
        return None
    num, den = (int(x) for x in text.split(sep, 1))
    return Fraction(num, den) if num > 0 and den > 0 else None


def main_streams(probe_json: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The first real video stream (cover art is not video) and the first audio stream."""
    streams = probe_json.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    return video, audio


def _rotation(video: dict[str, Any]) -> int:
    for sd in video.get("side_data_list", []):
        if "rotation" in sd:
            return round(sd["rotation"] / 90) * 90 % 360
    rotate = _num(video.get("tags", {}).get("rotate"), int)  # old muxers: clockwise degrees
    return round(-rotate / 90) * 90 % 360 if rotate else 0


def media_info(probe_json: dict[str, Any]) -> MediaInfo:
    fmt = probe_json.get("format", {})
    video, audio = main_streams(probe_json)
    duration = _num(fmt.get("duration"))
    if duration is None:
        durations = [d for s in probe_json.get("streams", []) if (d := _num(s.get("duration")))]
        duration = max(durations, default=None)
    info: dict[str, Any] = {
        "has_video": video is not None, "has_audio": audio is not None, "duration": duration,
        "format_name": fmt.get("format_name"), "size_bytes": _num(fmt.get("size"), int),
        "bit_rate": _num(fmt.get("bit_rate"), int),
    }
    if video is not None:
        width, height = video.get("width") or None, video.get("height") or None
        sar = _fraction(video.get("sample_aspect_ratio"), ":") or Fraction(1)
        rotation = _rotation(video)
        dw, dh = (round(width * sar), height) if width and height else (width, height)
        if rotation in (90, 270):
            dw, dh = dh, dw
        fps = _fraction(video.get("avg_frame_rate"), "/") or _fraction(video.get("r_frame_rate"), "/")
        field_order = video.get("field_order")
        info |= {
            "width": width, "height": height, "rotation": rotation, "display_width": dw, "display_height": dh,
            "sar": sar, "dar": (Fraction(width, height) * sar) if width and height else None,
            "fps": float(fps) if fps else None, "video_codec": video.get("codec_name"),
            "video_bit_rate": _num(video.get("bit_rate"), int), "pix_fmt": video.get("pix_fmt"),
            "field_order": field_order, "interlaced": field_order in ("tt", "bb", "tb", "bt"),
            "color_transfer": video.get("color_transfer"), "color_primaries": video.get("color_primaries"),
        }
    if audio is not None:
        info |= {"audio_codec": audio.get("codec_name"), "audio_channels": audio.get("channels"),
                 "audio_sample_rate": _num(audio.get("sample_rate"), int),
                 "audio_bit_rate": _num(audio.get("bit_rate"), int)}
    subtitles = tuple(s.get("codec_name") or "" for s in probe_json.get("streams", []) if s.get("codec_type") == "subtitle")
    if subtitles:
        info["subtitle_codecs"] = subtitles
    return MediaInfo(**info)


def output_facts(probe_json: dict[str, Any]) -> dict[str, Any]:
    """What vidmill records about one output file, in its own words (dialects render their ``meta`` from it).

    Video: stored ``width``/``height``, ``display_width``/``display_height`` (SAR and rotation applied),
    ``frame_rate`` (ffprobe's fraction text), ``video_codec``, ``video_bit_rate`` (bits/s), ``dar``/``sar``
    ("16:9"), ``pix_fmt``. Audio: ``audio_codec``, ``audio_bit_rate``, ``audio_channels``,
    ``audio_sample_rate``, ``audio_index``, ``audio_language``, ``audio_title``. Both: ``duration`` (s).
    Keys whose value is unknown are left out.
    """
    fmt = probe_json.get("format", {})
    video, audio = main_streams(probe_json)
    info = media_info(probe_json)
    duration = _num(fmt.get("duration") or (video or audio or {}).get("duration"))
    facts: dict[str, Any] = {"duration": duration}
    if video is not None:
        video_bitrate = info.video_bit_rate
        if video_bitrate is None and info.bit_rate:  # WebM/Matroska carry no per-stream rate
            video_bitrate = info.bit_rate - (info.audio_bit_rate or 0)
        facts |= {
            "width": info.width, "height": info.height,
            "display_width": info.display_width, "display_height": info.display_height,
            "frame_rate": video.get("avg_frame_rate") if _fraction(video.get("avg_frame_rate"), "/")
            else video.get("r_frame_rate"),
            "video_codec": info.video_codec, "video_bit_rate": video_bitrate,
            "dar": _q(info.dar, ":") if info.dar else None, "sar": _q(info.sar, ":"), "pix_fmt": info.pix_fmt,
        }
    if audio is not None:
        tags = audio.get("tags", {})
        facts |= {"audio_codec": info.audio_codec, "audio_bit_rate": info.audio_bit_rate,
                  "audio_channels": info.audio_channels, "audio_sample_rate": info.audio_sample_rate,
                  "audio_index": audio["index"], "audio_language": tags.get("language"),
                  "audio_title": tags.get("title")}
    return {k: v for k, v in facts.items() if v is not None}

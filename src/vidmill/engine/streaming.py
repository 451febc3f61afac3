"""Segmented outputs from one decode: HLS (``advanced_hls``, ``hls_audio``) and DASH (``advanced_dash``,
``webm_dash``; ``create_m3u8_playlist`` gives CMAF: one set of fMP4 segments behind an MPD and an HLS master).

One FFmpeg process per output: the source is decoded once; the filters every rung shares (deinterlace, frame
rate, rotate) run once before a ``split``; each branch then scales and feeds its own encoder. HLS writes one
``hls`` muxer per rendition (its own folder or name prefix) and the audio rendition once; DASH writes every
rendition through one ``dash`` muxer. ``finish`` then measures the real segments and writes what FFmpeg cannot
know in advance: the HLS master playlist (peak and average BANDWIDTH, RFC 6381 CODECS read from the encoded
streams, RESOLUTION, FRAME-RATE, the AUDIO group), I-frame playlists, and the MPD's bandwidth values.

What keeps a ladder switchable in players: keyframes forced on every segment boundary (same times on every
rung), no scene-cut keyframes, closed GOPs, one B-frame count on every rung, and one timestamp offset for every
HLS rendition (``-output_ts_offset``: no HLS muxer ever meets a negative DTS, so none shifts its rendition and
not another; DASH writes every rendition through one muxer, which shifts them all alike).
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vidmill.engine import video as geo
from vidmill.engine.codecs import VideoEncoder, audio_adjustments, audio_args, gop_frames, num
from vidmill.engine.outputs import FDK_FALLBACK_MESSAGE, VIDEO_ENCODERS
from vidmill.errors import QueryError, UnsupportedField

DEFAULT_SEGMENT_S = 9.0  # seed: "Defaults to 9"
HLS_MASTER = "playlist.m3u8"  # an HLS output's master playlist unless playlist_name says otherwise
CMAF_MASTER = HLS_MASTER  # the HLS master of a DASH output with create_m3u8_playlist (the seed's name)
TS_OFFSET = "1"  # seconds added to every rendition's timestamps (see the module docstring)
DEFAULT_BFRAMES = 3
_FPS_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Container:
    """What one streaming output kind carries and how it is segmented."""

    protocol: str  # "hls" | "dash"
    segment: str  # "ts" | "fmp4" | "webm"
    video_codecs: tuple[str, ...]  # first is the default
    audio_codecs: tuple[str, ...]
    has_video: bool = True


def container_for(fmt) -> Container:
    out = fmt.output
    if out == "advanced_hls":
        if fmt.fmp4:
            return Container("hls", "fmp4", ("libx264", "libx265"), ("aac",))
        return Container("hls", "ts", ("libx264",), ("aac",))
    if out == "hls_audio":
        return Container("hls", "fmp4" if fmt.fmp4 else "ts", (), ("aac",), has_video=False)
    if out == "advanced_dash":
        return Container("dash", "fmp4", ("libx264", "libx265"), ("aac",))
    if out == "webm_dash":
        return Container("dash", "webm", ("libvpx-vp9", "libvpx"), ("libopus", "libvorbis"))
    raise UnsupportedField(f"output {out} is not a streaming output", field="output")


STREAMING_OUTPUTS = frozenset({"advanced_hls", "hls_audio", "advanced_dash", "webm_dash"})
# Why a codec cannot go into a container (named in the refusal).
_CODEC_REASONS = {
    ("ts", "libx265"): "HEVC in HLS needs fmp4: 1 (Apple players take HEVC only from fMP4 segments)",
    ("ts", "libvpx-vp9"): "MPEG-TS cannot carry VP9; use advanced_dash, webm_dash or libx264",
    ("ts", "libvpx"): "MPEG-TS cannot carry VP8; use webm_dash or libx264",
    ("fmp4", "libvpx-vp9"): "VP9 HLS/DASH is made by webm_dash",
    ("fmp4", "libvpx"): "VP8 is made by webm_dash",
}


def merged(fmt, stream):
    """A stream's own fields over the format's (the format's values are the defaults of every stream)."""
    if stream is None:
        return fmt
    own = {name: getattr(stream, name) for name in stream.model_fields_set if name in type(fmt).model_fields}
    own.setdefault("tag", None)  # a stream's user tag is its own, never the format's
    if "tag" in stream.model_fields_set:
        own["tag"] = stream.tag
    return fmt.model_copy(update=own)


def segment_seconds(fmt) -> float:
    return float(fmt.segment_duration) if fmt.segment_duration else DEFAULT_SEGMENT_S


def _stream_field(prefix: str, has_streams: bool, j: int, name: str) -> str:
    return f"{prefix}.stream[{j}].{name}" if has_streams else f"{prefix}.{name}"


def _one_line_unquoted(text: str) -> bool:
    return text.isprintable() and not any(c in text for c in "\r\n\"")


def check_static(fmt, prefix: str) -> None:
    """Refusals that need no source: codecs the container cannot carry, names that collide, keyframe intervals
    and frame rates that cannot share segment boundaries. Raises QueryError naming the field."""
    box = container_for(fmt)
    streams = list(fmt.stream or [None])
    has = fmt.stream is not None
    seg = segment_seconds(fmt)
    if fmt.encryption is not None and box.protocol != "hls":
        cmaf = " (CMAF's segments are shared with the MPD, which cannot carry it)" if fmt.create_m3u8_playlist else ""
        raise UnsupportedField(f"{prefix}.encryption: AES-128 encryption applies to HLS outputs (advanced_hls, "
                               f"hls_audio){cmaf}; DASH protection (cenc_drm) is not supported yet",
                               field=f"{prefix}.encryption")
    key_url = fmt.encryption.key_url if fmt.encryption is not None else None
    if key_url is not None and not _one_line_unquoted(key_url):
        # it is written inside EXT-X-KEY's quoted URI attribute (RFC 8216 4.2: no quote, CR or LF)
        raise QueryError(f"{prefix}.encryption.key_url: must be one line without quotes",
                         field=f"{prefix}.encryption.key_url")
    if box.protocol == "dash" and fmt.create_m3u8_playlist and fmt.playlist_name == CMAF_MASTER:
        raise QueryError(f"{prefix}.playlist_name: {CMAF_MASTER} is the HLS master of a DASH output with "
                         f"create_m3u8_playlist; name the MPD otherwise", field=f"{prefix}.playlist_name")
    if fmt.i_frames_only and box.protocol != "hls":
        raise UnsupportedField(f"{prefix}.i_frames_only: I-frame playlists are made for advanced_hls outputs, not "
                               f"{fmt.output}", field=f"{prefix}.i_frames_only")
    if fmt.encryption is not None and fmt.i_frames_only:
        # RFC 8216 4.3.2.4: AES-128 restarts CBC at each Media Segment, and an I-frame entry is a Media Segment
        # of its own: a byte range inside a segment encrypted whole cannot be decrypted on its own.
        raise UnsupportedField(f"{prefix}.i_frames_only: I-frame playlists cannot be made with AES-128 encryption "
                               f"(each I-frame byte range would need its own AES-128 segment, RFC 8216 4.3.2.4)",
                               field=f"{prefix}.i_frames_only")
    rates: list[tuple[int, Fraction]] = []
    for j, stream in enumerate(streams):
        r = merged(fmt, stream)
        if box.has_video:
            codec = r.video_codec or box.video_codecs[0]
            if codec in VIDEO_ENCODERS and codec not in box.video_codecs:
                field = _stream_field(prefix, has, j, "video_codec")
                reason = _CODEC_REASONS.get((box.segment, codec), f"{codec} cannot go into a {fmt.output} output")
                raise QueryError(f"{field}: {reason}", field=field)
        if r.framerate is not None:
            rates.append((j, Fraction(str(r.framerate))))
        spec = r.keyframe_spec
        if spec is not None:
            field = _stream_field(prefix, has, j, "keyframe")
            value, unit = spec
            if unit == "seconds":
                period = Fraction(str(value))
            elif r.framerate is not None:
                period = Fraction(int(value)) / Fraction(str(r.framerate))
            else:
                continue  # frames at the source's rate: checked when the source is known
            _check_period(Fraction(str(seg)), period, field, prefix)
    if len({rate for _, rate in rates}) > 1:
        for j, rate in rates:
            if not _whole(Fraction(str(seg)) * rate):
                field = _stream_field(prefix, has, j, "framerate")
                raise QueryError(f"{field}: at {rate} fps a {num(seg)} s segment is not a whole number of frames, so "
                                 f"its segments cannot start at the same times as the other streams'; use one "
                                 f"frame rate for every stream or a segment_duration that fits them all",
                                 field=field)
    ext = ".m3u8" if box.protocol == "hls" else ".mpd"
    if fmt.playlist_name and not fmt.playlist_name.lower().endswith(ext):
        raise QueryError(f"{prefix}.playlist_name: the {fmt.output} playlist's name must end with {ext}",
                         field=f"{prefix}.playlist_name")
    for j, stream in enumerate(streams):
        if stream is not None and stream.chunklist_name and (
                box.protocol != "hls" or not stream.chunklist_name.lower().endswith(".m3u8")):
            field = f"{prefix}.stream[{j}].chunklist_name"
            why = "must end with .m3u8" if box.protocol == "hls" else f"is used with HLS outputs, not {fmt.output}"
            raise QueryError(f"{field}: a chunklist name {why}", field=field)
    if box.protocol == "hls" and fmt.single_folder:
        names = [s.chunklist_name for s in streams if s is not None and s.chunklist_name]
        master = fmt.playlist_name or HLS_MASTER
        for j, stream in enumerate(streams):
            if stream is not None and stream.chunklist_name and (
                    names.count(stream.chunklist_name) > 1 or stream.chunklist_name == master):
                field = f"{prefix}.stream[{j}].chunklist_name"
                raise QueryError(f"{field}: with single_folder every playlist needs its own name", field=field)


def _whole(x: Fraction) -> bool:
    return abs(x - round(x)) < _FPS_TOLERANCE


def _check_period(seg: Fraction, period: Fraction, field: str, prefix: str) -> None:
    if period <= 0 or not _whole(seg / period):
        raise QueryError(f"{field}: a keyframe every {float(period):g} s does not divide the {float(seg):g} s "
                         f"segment_duration, so segments could not all start on a keyframe", field=field)


@dataclass
class Rung:
    stream_index: int
    fmt: object  # the merged Format
    frame: geo.Geometry
    encoder: VideoEncoder
    fps: float | None
    name: str  # video_1, video_2, ... (from the stream's position: names stay put when a rung is skipped)


def decide_streams(fmt, info, upscale: bool) -> dict[int, str | None]:
    """Per stream: None (made), "skip" or "source_size" (the seed's upscale rule, applied to streams)."""
    streams = list(fmt.stream or [None])
    if upscale or not info.has_video:
        return {j: None for j in range(len(streams))}
    base = lambda r: geo.base_size(info, r.rotate)  # noqa: E731
    larger = {j for j, s in enumerate(streams) if geo.is_larger(geo.requested(merged(fmt, s)), base(merged(fmt, s)))}
    if len(larger) == len(streams):
        return {j: ("source_size" if j == 0 else "skip") for j in range(len(streams))}
    return {j: ("skip" if j in larger else None) for j in range(len(streams))}


def _gop(r, fps: float | None, seg: float, field_prefix: str) -> tuple[str, int]:
    """(keyframe period in seconds, GOP frames) for one rung; QueryError when ``keyframe`` cannot fit."""
    spec = r.keyframe_spec
    rate = fps or 25.0
    if spec is None:
        return num(seg), gop_frames(seg, rate)
    value, unit = spec
    period = Fraction(str(value)) if unit == "seconds" else Fraction(int(value)) / Fraction(rate).limit_denominator(1001)
    _check_period(Fraction(str(seg)), period, f"{field_prefix}.keyframe", field_prefix)
    frames = int(value) if unit == "frames" else gop_frames(value, rate)
    return num(float(period)), frames


def _common_prefix(chains: list[list[str]]) -> list[str]:
    """Filters every rung runs before its own scaling: done once, before the split."""
    out: list[str] = []
    for items in zip(*chains):
        if len(set(items)) != 1 or items[0].startswith(("scale=", "crop=", "pad=", "setsar=")):
            break
        out.append(items[0])
    return out


def filter_graph(chains: list[list[str]]) -> str:
    """``[0:v:0]shared,split=N[s0]..;[s0]own0[v0];...`` (labels are ours; every filter comes from geometry)."""
    shared = _common_prefix(chains)
    if len(chains) == 1:
        return f"[0:v:0]{','.join(chains[0])}[v0]"
    head = ",".join([*shared, f"split={len(chains)}"])
    parts = [f"[0:v:0]{head}{''.join(f'[s{i}]' for i in range(len(chains)))}"]
    for i, chain in enumerate(chains):
        own = chain[len(shared):] or ["null"]
        parts.append(f"[s{i}]{','.join(own)}[v{i}]")
    return ";".join(parts)


def rung_threads(areas: list[int], cpus: int) -> list[int]:
    """x264 threads per rung of a ladder whose encoders run at once in one process: x264's own default
    (1.5 x cores frame threads for every encoder) oversubscribes the box N times over; each rung gets its share
    of 1.5 x cores by pixel area instead (at least 1). Measured in docs/architecture.md (2 cores,
    1080/720/480/360: 2/1/1/1 threads): ~10% less CPU than x264's defaults on a loaded box, the same on a quiet one."""
    total = sum(areas) or 1
    return [max(1, round(1.5 * cpus * a / total)) for a in areas]


CGROUP = Path("/sys/fs/cgroup")


def usable_cpus(cgroup: Path = CGROUP) -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup v2 quota (``cpu.max``, a container's
    CPU limit). ``os.cpu_count()`` counts the host's CPUs, so a worker limited to 2 of 32 would size x264 for 32."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def per_stream(args: list[str], k: int) -> list[str]:
    """Encoder options for output video stream ``k`` of a muxer that carries several (``-crf`` -> ``-crf:v:k``)."""
    out: list[str] = []
    for i in range(0, len(args), 2):
        opt = args[i].split(":", 1)[0]
        out += [f"{opt}:v:{k}", args[i + 1]]
    return out


def plan_streaming(fmt, *, source: Path, info, workdir: Path, ffmpeg: str, index: int, upscale: bool,
                   input_args: list[str], duration: float | None):
    """Plan a streaming output: one FFmpeg step, one PlannedOutput per rendition plus the manifest(s)."""
    from vidmill.engine.plan import GLOBAL_ARGS, Notice, Plan, Step

    prefix = f"format[{index}]"
    box = container_for(fmt)
    check_static(fmt, prefix)
    has_streams = fmt.stream is not None
    streams = list(fmt.stream or [None])
    seg = segment_seconds(fmt)
    notices: list = []

    def warner(j: int):
        def warn(message: str, key: str | None = None) -> None:
            field = (_stream_field(prefix, has_streams, j, key) if key else None)
            notices.append(Notice("adjusted", message, field, index, j))
        return warn

    # --- video rungs ------------------------------------------------------------------------------------
    rungs: list[Rung] = []
    if box.has_video:
        if not info.has_video:
            raise QueryError(f"{prefix}.output: the source has no video stream for a {fmt.output} output",
                             field=f"{prefix}.output")
        decisions = decide_streams(fmt, info, upscale)
        for j, stream in enumerate(streams):
            r = merged(fmt, stream)
            decision = decisions[j]
            if decision == "skip":
                notices.append(Notice("skipped", "the requested size is larger than the source and upscale is off",
                                      None, index, j))
                continue
            if decision == "source_size":
                notices.append(Notice("source_size", "every stream is larger than the source and upscale is off: "
                                                     "the first one is encoded at the source size", None, index, j))
            warn = warner(j)
            codec = r.video_codec or box.video_codecs[0]
            if codec not in VIDEO_ENCODERS:
                field = _stream_field(prefix, has_streams, j, "video_codec")
                raise UnsupportedField(f"{field}: {codec} is not supported yet by vidmill", field=field)
            frame = geo.geometry(r, info, source_size=decision == "source_size")
            for note in frame.notes:
                warn(note, "aspect_ratio")
            encoder = VIDEO_ENCODERS[codec](r, warn)
            fps = geo.output_fps(r, info)
            encoder.segment = _gop(r, fps, seg, _stream_field(prefix, has_streams, j, "keyframe").rsplit(".", 1)[0])
            if r.two_pass:
                warn("two_pass is not used in segmented outputs; encoded in one pass", "two_pass")
            rungs.append(Rung(j, r, frame, encoder, fps, f"video_{j + 1}"))
        _check_rates(rungs, seg, prefix, has_streams)
        if box.protocol == "dash":
            dash_aspect(rungs, info, prefix, has_streams)
        baseline = any(str((r.fmt.video_codec_parameters and r.fmt.video_codec_parameters.vprofile)
                           or r.fmt.profile or "") == "baseline" for r in rungs)
        for rung in rungs:
            if rung.encoder.name in ("libx264", "libx265"):
                rung.encoder.bframes = 0 if baseline else DEFAULT_BFRAMES
        sized = [r for r in rungs if r.encoder.name == "libx264"]
        if len(sized) > 1:
            counts = rung_threads([r.frame.width * r.frame.height for r in sized], usable_cpus())
            for rung, n in zip(sized, counts):
                rung.encoder.threads = n

    # --- audio -----------------------------------------------------------------------------------------
    top = merged(fmt, streams[0])
    audio_fmt = top
    with_audio = info.has_audio and not top.audio_mute
    audio_codec = None
    if with_audio:
        asked = top.audio_codec
        if asked is None or asked in box.audio_codecs:
            audio_codec = asked or box.audio_codecs[0]
        else:
            audio_codec = box.audio_codecs[0]
            field = _stream_field(prefix, has_streams, 0, "audio_codec")
            message = FDK_FALLBACK_MESSAGE if asked == "libfdk_aac" else \
                f"{asked} cannot go into a {fmt.output} output; encoded with {audio_codec}"
            notices.append(Notice("adjusted", message, field, index, 0))
    separate = box.protocol == "dash" or not box.has_video or (fmt.separate_audio is None or bool(fmt.separate_audio))
    if with_audio:  # what the audio encoder cannot take, said once per stream whose audio is encoded
        for j, stream in enumerate(streams[:1] if separate else streams):
            for message, key in audio_adjustments(merged(fmt, stream), audio_codec):
                warner(j)(message, key)
    if with_audio and separate and box.has_video and len(streams) > 1:
        for j, stream in enumerate(streams[1:], start=1):
            if stream is not None and any(getattr(stream, a) is not None and getattr(stream, a) != getattr(top, a)
                                          for a in ("audio_bitrate", "audio_sample_rate", "audio_channels_number")):
                notices.append(Notice("adjusted", "every stream shares one audio rendition, encoded with stream[0]'s "
                                                  "audio settings", f"{prefix}.stream[{j}].audio_bitrate", index, j))
                break

    inputs = []
    if fmt.start_time:
        inputs += ["-ss", num(fmt.start_time)]
    if fmt.duration:
        inputs += ["-t", num(fmt.duration)]
    inputs += [*input_args, "-i", f"file:{source}"]
    common = ["-map_metadata", "-1", "-map_chapters", "-1"]
    graph = ["-filter_complex", filter_graph([r.frame.filters for r in rungs])] if rungs else []
    sws = next((r.fmt.video_codec_parameters.sws_flags for r in rungs
                if r.fmt.video_codec_parameters is not None and r.fmt.video_codec_parameters.sws_flags), None)
    if sws:
        graph = ["-sws_flags", sws, *graph]

    if box.protocol == "hls":
        layout = HlsLayout(fmt, box, workdir)
        keys = HlsKeys(fmt.encryption, workdir) if fmt.encryption is not None else None
        outputs_args, planned = _hls_outputs(fmt, box, layout, rungs, streams, audio_fmt, audio_codec, separate,
                                             common, seg, index, keys)
        main = layout.master
        finish = HlsFinisher(fmt, box, layout, planned, workdir, separate and with_audio)
        finish.keys = keys
    else:
        keys = None
        outputs_args, planned, main = _dash_output(fmt, box, workdir, rungs, audio_fmt, audio_codec, common, seg,
                                                   index)
        finish = DashFinisher(fmt, box, workdir, planned, main)
    argv = [ffmpeg, *GLOBAL_ARGS, *inputs, *graph, *outputs_args]
    before = keys.files if box.protocol == "hls" and keys is not None else {}
    return Plan(steps=[Step(argv, duration, "encode")], outputs=planned, notices=notices, main=main,
                finish=finish, write_files=before)


def _check_rates(rungs: list[Rung], seg: float, prefix: str, has_streams: bool) -> None:
    """Rungs at different frame rates share segment boundaries only when each segment is whole frames at each."""
    rates = {round(r.fps, 6) for r in rungs if r.fps}
    if len(rates) <= 1:
        return
    for r in rungs:
        if r.fps and abs(seg * r.fps - round(seg * r.fps)) > _FPS_TOLERANCE:
            field = _stream_field(prefix, has_streams, r.stream_index, "framerate")
            raise QueryError(f"{field}: at {r.fps:g} fps a {num(seg)} s segment is not a whole number of frames, so "
                             f"its segments cannot start at the same times as the other streams'; give every stream "
                             f"the same framerate or a segment_duration that fits them all", field=field)


def _intended_aspect(rung: Rung, info) -> tuple[Fraction, str]:
    """The display aspect ratio a rung aims at, exact, and the field that chose it: its ``aspect_ratio``, both
    sides of its ``size`` (or ``width`` and ``height``), else the source picture's (after ``rotate``)."""
    r = rung.fmt
    if r.aspect_ratio is not None:
        num_, _, den = str(r.aspect_ratio).partition(":")
        return Fraction(num_) / Fraction(den or "1"), "aspect_ratio"
    if not r.resolution and (r.size_wh or (r.width and r.height)):
        return Fraction(rung.frame.width, rung.frame.height), "size" if r.size_wh else "width"
    bw, bh = geo.base_size(info, int(r.rotate) if r.rotate else None)
    field = "resolution" if r.resolution else "width" if r.width else "height" if r.height else "size"
    return Fraction(int(bw), int(bh)), field


def dash_aspect(rungs: list[Rung], info, prefix: str, has_streams: bool) -> None:
    """One display aspect ratio for every rung of a DASH ladder. The dash muxer gives an adaptation set one
    aspect ratio (width x SAR / height, exact) and refuses rungs that differ even by the rounding of even sides
    (426x240 beside 256x144). Each rung ends with ``setdar`` to the ladder's ratio instead of ``setsar=1``, so
    its SAR absorbs that rounding; a rung whose frame has another shape is refused by the field that shaped
    it (players switch between the rungs of one adaptation set mid-play)."""
    if not rungs:
        return
    dar, _ = _intended_aspect(rungs[0], info)
    for rung in rungs:
        w, h = rung.frame.width, rung.frame.height
        own, name = _intended_aspect(rung, info)
        # each side rounded to an even number moves by at most 1: |w - h x dar| <= 1 + dar is rounding, not shape
        if abs(own - dar) / dar > Fraction(1, 200) or abs(w - h * dar) > 1 + dar:
            field = _stream_field(prefix, has_streams, rung.stream_index, name)
            raise QueryError(f"{field}: a {w}x{h} picture ({float(own):.4g}:1) cannot share a DASH adaptation set "
                             f"with {float(dar):.4g}:1 streams; give every stream the same aspect ratio",
                             field=field)
    for rung in rungs:
        filters = [f for f in rung.frame.filters if not f.startswith("setsar=")]
        rung.frame.filters = [*filters, f"setdar=dar={dar.numerator}/{dar.denominator}:max=1000000"]


class HlsLayout:
    """Where each HLS file goes: a folder per rendition (``video_1/``, ``audio_1/``), or one folder with prefixes
    (``single_folder``). Names come from the query only through validated file names (``playlist_name``,
    ``chunklist_name``); everything else is ours."""

    def __init__(self, fmt, box: Container, workdir: Path):
        self.fmt, self.box, self.workdir = fmt, box, workdir
        self.single = bool(fmt.single_folder)
        self.master = workdir / (fmt.playlist_name or HLS_MASTER)
        self.ext = "ts" if box.segment == "ts" else "m4s"

    def _dir(self, name: str) -> Path:
        return self.workdir if self.single else self.workdir / name

    def chunklist(self, name: str, stream) -> Path:
        own = stream.chunklist_name if stream is not None and stream.chunklist_name else None
        if self.single:
            return self.workdir / (own or f"chunklist_{name}.m3u8")
        return self._dir(name) / (own or "chunklist.m3u8")

    def segments(self, name: str) -> Path:
        return self._dir(name) / (f"{name}_%05d.{self.ext}" if self.single else f"segment_%05d.{self.ext}")

    def segment_glob(self, name: str) -> str:
        rel = self.segments(name).relative_to(self.workdir).as_posix()
        return rel.replace("%05d", "[0-9]" * 5)

    def init(self, name: str) -> Path:
        return self._dir(name) / (f"{name}_init.mp4" if self.single else "init.mp4")

    def iframes(self, name: str) -> Path:
        return self._dir(name) / (f"iframes_{name}.m3u8" if self.single else "iframes.m3u8")


def _hls_muxer(box: Container, layout: HlsLayout, name: str, chunklist: Path, seg: float,
               keys: "HlsKeys | None" = None) -> list[str]:
    args = ["-output_ts_offset", TS_OFFSET, "-f", "hls", "-hls_time", num(seg), "-hls_list_size", "0",
            "-hls_playlist_type", "vod", "-hls_flags", "independent_segments"]
    if keys is not None and box.segment == "ts":  # FFmpeg refuses encrypted fMP4: HlsKeys.seal does it after
        args += ["-hls_key_info_file", str(keys.info_file(chunklist))]
    if box.segment == "fmp4":
        # video presents from its first decode time, as in DASH (see _dash_output)
        args += ["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", layout.init(name).name,
                 "-hls_segment_options", "movflags=+negative_cts_offsets"]
    else:
        args += ["-hls_segment_type", "mpegts"]
    return args + ["-hls_segment_filename", str(layout.segments(name)), str(chunklist)]


class HlsKeys:
    """AES-128 for every segment of an HLS output: the user's key and IV or random ones. The key travels to FFmpeg
    in a key-info file (never in argv); without ``key_url`` it is published beside the master playlist as
    ``encryption.key`` (reachable only through this output's unguessable folder, like its segments) and each
    media playlist names it by a relative URI."""

    def __init__(self, enc, workdir: Path):
        import secrets

        self.workdir = workdir
        self.key = bytes.fromhex(enc.key) if enc.key else secrets.token_bytes(16)
        self.iv = enc.iv.lower() if enc.iv else secrets.token_hex(16)
        self.key_url = enc.key_url
        self.public = workdir / "encryption.key"
        self.private = workdir / ".encryption.key"  # what FFmpeg reads when the user serves the key
        self.files: dict[Path, bytes] = {self.public if not self.key_url else self.private: self.key}

    def uri(self, chunklist: Path) -> str:
        if self.key_url:
            uri = self.key_url
        else:
            depth = len(chunklist.parent.relative_to(self.workdir).parts)
            uri = "../" * depth + self.public.name
        if not _one_line_unquoted(uri):  # refused at start by check_static; never written into a playlist
            raise QueryError("encryption.key_url: must be one line without quotes", field="encryption.key_url")
        return uri

    def info_file(self, chunklist: Path) -> Path:
        uri = self.uri(chunklist)
        path = self.workdir / f".keyinfo-{chunklist.parent.name}-{chunklist.stem}"
        key_file = self.private if self.key_url else self.public
        self.files[path] = f"{uri}\n{key_file}\n{self.iv}\n".encode()
        return path

    def encrypt(self, data: bytes) -> bytes:
        """AES-128-CBC with PKCS7 padding over a whole file, as RFC 8216 4.3.2.4 defines METHOD=AES-128."""
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        padder = padding.PKCS7(128).padder()
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(bytes.fromhex(self.iv))).encryptor()
        return encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()

    def seal(self, chunklist: Path, init: Path, segments: list[Path]) -> None:
        """Encrypt an fMP4 rendition FFmpeg wrote in the clear (its hls muxer refuses encrypted fMP4): the init
        segment and every media segment, each a whole AES-128 file. The EXT-X-KEY goes before EXT-X-MAP, so it
        applies to the init segment too (RFC 8216 4.3.2.4), with the IV that 4.3.2.5 then requires."""
        for path in [init, *segments]:
            tmp = path.with_name(f".{path.name}.aes")
            tmp.write_bytes(self.encrypt(path.read_bytes()))
            tmp.replace(path)
        tag = f'#EXT-X-KEY:METHOD=AES-128,URI="{self.uri(chunklist)}",IV=0x{self.iv}'
        lines = chunklist.read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("#EXT-X-MAP:"))
        chunklist.write_text("\n".join(lines[:at] + [tag] + lines[at:]) + "\n")


def _hls_outputs(fmt, box, layout: HlsLayout, rungs, streams, audio_fmt, audio_codec, separate, common, seg, index,
                 keys: HlsKeys | None = None):
    from vidmill.engine.plan import PlannedOutput

    args: list[str] = []
    planned: list = [PlannedOutput(index, 0, "manifest",
                                   [layout.master] + ([keys.public] if keys and not keys.key_url else []),
                                   user_tag=fmt.tag)]
    for k, rung in enumerate(rungs):
        stream = streams[rung.stream_index]
        chunklist = layout.chunklist(rung.name, stream)
        chunklist.parent.mkdir(parents=True, exist_ok=True)
        a = ["-map", f"[v{k}]", *common, *rung.encoder.args(rung.fps, False), *rung.encoder.tag_args()]
        if audio_codec and not separate:
            a += ["-map", "0:a:0", *audio_args(rung.fmt, audio_codec)]
        else:
            a += ["-an"]
        args += a + _hls_muxer(box, layout, rung.name, chunklist, seg, keys)
        files = [chunklist] + ([layout.init(rung.name)] if box.segment == "fmp4" else [])
        if fmt.i_frames_only:
            files.append(layout.iframes(rung.name))
        planned.append(PlannedOutput(index, rung.stream_index, "video", files, (layout.segment_glob(rung.name),),
                                     user_tag=rung.fmt.tag))
    if audio_codec and (separate or not rungs):
        audio_streams = [(0, audio_fmt)] if rungs else [(j, merged(fmt, s)) for j, s in enumerate(streams)]
        for j, afmt in audio_streams:
            name = f"audio_{j + 1}"
            chunklist = layout.chunklist(name, streams[j] if not rungs else None)
            chunklist.parent.mkdir(parents=True, exist_ok=True)
            args += ["-map", "0:a:0", *common, "-vn", *audio_args(afmt, audio_codec),
                     *_hls_muxer(box, layout, name, chunklist, seg, keys)]
            files = [chunklist] + ([layout.init(name)] if box.segment == "fmp4" else [])
            planned.append(PlannedOutput(index, j, "audio", files, (layout.segment_glob(name),),
                                         user_tag=afmt.tag if not rungs else None))
    if not audio_codec and not rungs:
        raise QueryError(f"format[{index}].output: the source has no audio stream for an {fmt.output} output",
                         field=f"format[{index}].output")
    names = [f for out in planned for f in out.files]
    clash = next((f for f in names if names.count(f) > 1), None)
    if clash is not None:
        field = f"format[{index}].playlist_name" if clash == layout.master else f"format[{index}].stream"
        raise QueryError(f"{field}: two files of this output would both be named {clash.name}", field=field)
    return args, planned


def _dash_output(fmt, box, workdir: Path, rungs, audio_fmt, audio_codec, common, seg, index):
    from vidmill.engine.plan import PlannedOutput

    mpd = workdir / (fmt.playlist_name or "playlist.mpd")
    args: list[str] = []
    for k, rung in enumerate(rungs):
        args += ["-map", f"[v{k}]"]
    if audio_codec:
        args += ["-map", "0:a:0"]
    args += common
    for k, rung in enumerate(rungs):
        args += per_stream([*rung.encoder.args(rung.fps, False), *rung.encoder.tag_args()], k)
    if audio_codec:
        args += audio_args(audio_fmt, audio_codec)
    ext = "webm" if box.segment == "webm" else "m4s"
    # One AdaptationSet per video codec: a set holds representations a player can switch between seamlessly
    # (DASH-IF IOP), so an HEVC rung beside H.264 ones gets its own and a player picks the set it can decode.
    codecs = list(dict.fromkeys(rung.encoder.name for rung in rungs))
    video_sets = [",".join(str(k) for k, rung in enumerate(rungs) if rung.encoder.name == c) for c in codecs]
    sets = " ".join([*(f"id={i},streams={ks}" for i, ks in enumerate(video_sets)),
                     *([f"id={len(video_sets)},streams=a"] if audio_codec else [])])
    # One dash muxer carries every rendition, so one muxer decides every timestamp shift: no offset needed.
    # Negative composition offsets let each video track start presenting at its first decode time (0) with no
    # edit list (B-frames would otherwise give every video track a 2-frame edit the audio lacks, and players
    # that ignore edit lists a buffer starting 0.08 s late); the audio keeps only its encoder priming edit.
    if box.segment == "fmp4":
        args += ["-format_options", "movflags=+negative_cts_offsets"]
    args += ["-f", "dash", "-seg_duration", num(seg), "-use_template", "1",
             "-use_timeline", "1", "-adaptation_sets", sets,
             "-dash_segment_type", "webm" if box.segment == "webm" else "mp4",
             "-init_seg_name", f"init-$RepresentationID$.{ext}",
             "-media_seg_name", f"chunk-$RepresentationID$-$Number%05d$.{ext}"]
    cmaf = bool(fmt.create_m3u8_playlist) and box.segment == "fmp4"
    if cmaf:  # the seed: "creates playlist.m3u8 file in the DASH output" (check_static keeps the MPD's name off it)
        args += ["-hls_playlist", "1", "-hls_master_name", CMAF_MASTER]
    args.append(str(mpd))
    planned: list = [PlannedOutput(index, 0, "manifest", [mpd] + ([workdir / CMAF_MASTER] if cmaf else []),
                                   user_tag=fmt.tag)]

    def rendition(k: int) -> tuple[list[Path], Path]:
        """Its files, and what status links to: its own HLS playlist with CMAF, else the MPD that plays it."""
        init = workdir / f"init-{k}.{ext}"
        return ([init, workdir / f"media_{k}.m3u8"], workdir / f"media_{k}.m3u8") if cmaf else ([init], mpd)

    for k, rung in enumerate(rungs):
        files, link = rendition(k)
        planned.append(PlannedOutput(index, rung.stream_index, "video", files,
                                     (f"chunk-{k}-[0-9][0-9][0-9][0-9][0-9].{ext}",), user_tag=rung.fmt.tag, link=link))
    if audio_codec:
        k = len(rungs)
        files, link = rendition(k)
        planned.append(PlannedOutput(index, 0, "audio", files, (f"chunk-{k}-[0-9][0-9][0-9][0-9][0-9].{ext}",),
                                     link=link))
    return args, planned, mpd


# --- after the run: measure the real segments ----------------------------------------------------------


def media_playlist(path: Path) -> list[tuple[float, Path]]:
    """(EXTINF seconds, segment path) of an FFmpeg-written VOD media playlist."""
    entries: list[tuple[float, Path]] = []
    duration = None
    for line in path.read_text().splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",", 1)[0])
        elif line and not line.startswith("#") and duration is not None:
            entries.append((duration, path.parent / line))
            duration = None
    return entries


def target_duration(durations) -> int:
    """EXT-X-TARGETDURATION: every EXTINF, rounded to the nearest integer, is at most this (RFC 8216 §4.3.3.1)."""
    return max([1, *(int(d + 0.5) for d in durations)])


def peak_rate(sizes: list[tuple[float, int]], target: float) -> float:
    """The peak segment bit rate of RFC 8216 §4.1: the largest rate of any run of consecutive segments lasting
    0.5 to 1.5 x the target duration (a segment longer than that counts alone). A short last segment is so
    measured with its neighbour: alone, one keyframe in 0.04 s would read as ~10x the stream's real peak. With
    less than half a target in all, the whole playlist's rate."""
    low, high = 0.5 * target, 1.5 * target
    peak = 0.0
    for i in range(len(sizes)):
        bits = seconds = 0.0
        for j in range(i, len(sizes)):
            seconds += sizes[j][0]
            bits += sizes[j][1] * 8
            if seconds >= low and (seconds <= high or j == i):
                peak = max(peak, bits / seconds)
            if seconds >= high:
                break
    total_s = sum(d for d, _ in sizes)
    if not peak and total_s > 0:
        peak = sum(b for _, b in sizes) * 8 / total_s
    return peak


def rates(entries: list[tuple[float, Path]]) -> dict:
    """Peak (RFC 8216 §4.1, see ``peak_rate``) and average bits per second of a rendition, measured from its
    segment files. HLS BANDWIDTH and DASH ``@bandwidth`` both take the peak."""
    sizes = [(d, p.stat().st_size) for d, p in entries]
    total_s = sum(d for d, _ in sizes)
    peak = peak_rate(sizes, target_duration(d for d, _ in sizes))
    avg = sum(size for _, size in sizes) * 8 / total_s if total_s else 0
    return {"bandwidth": math.ceil(peak), "average_bandwidth": math.ceil(avg), "duration": round(total_s, 6),
            "segments": len(sizes)}


def _nal_units(data: bytes):
    for chunk in re.split(b"\x00\x00\x01", data):
        if chunk:
            yield chunk.rstrip(b"\x00") if chunk.endswith(b"\x00") else chunk


def codec_strings(path: Path) -> list[str]:
    """RFC 6381 codec strings of a media file's video and audio, read from the encoded streams themselves."""
    import av

    out: list[str] = []
    with av.open(f"file:{path}", "r", container_options={"protocol_whitelist": "file"}) as c:
        for stream in c.streams:
            cc = stream.codec_context
            name = cc.name
            if stream.type == "video":
                extra = bytes(cc.extradata or b"")
                if name == "h264":
                    sps = extra[1:4] if extra[:1] == b"\x01" else None
                    if sps is None:
                        data = extra
                        if not data:
                            for packet in c.demux(stream):
                                data = bytes(packet)
                                break
                        nal = next((n for n in _nal_units(data) if n[0] & 0x1F == 7), None)
                        sps = nal[1:4] if nal else None
                    out.append("avc1.%02x%02x%02x" % tuple(sps) if sps else "avc1")
                elif name == "hevc":
                    out.append(_hvc1(extra))
                elif name == "vp9":
                    out.append("vp09.00.10.08")
                else:
                    out.append(name)
            elif stream.type == "audio":
                if name == "aac":
                    profile = (stream.profile or "LC").upper()
                    out.append("mp4a.40.5" if "HE" in profile and "V2" not in profile else
                               "mp4a.40.29" if "V2" in profile else "mp4a.40.2")
                elif name == "mp3":
                    out.append("mp4a.40.34")
                else:
                    out.append(name)
    return out


def _hvc1(hvcc: bytes) -> str:
    """``hvc1.<space><profile>.<compat reversed>.<tier><level>.<constraints>`` from an hvcC record."""
    if len(hvcc) < 13 or hvcc[0] != 1:
        return "hvc1"
    space, tier, profile = hvcc[1] >> 6, (hvcc[1] >> 5) & 1, hvcc[1] & 0x1F
    compat = int.from_bytes(hvcc[2:6], "big")
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    parts = [f"hvc1.{'' if space == 0 else 'ABC'[space - 1]}{profile}", f"{reversed_compat:X}",
             f"{'H' if tier else 'L'}{hvcc[12]}", *(f"{b:X}" for b in constraints)]
    return ".".join(parts)


def decrypted_copy(segment: Path, key: bytes, iv: str, dest: Path) -> Path:
    """An AES-128 TS segment remuxed in the clear (FFmpeg's crypto protocol reads it), for probing only."""
    import av

    options = {"key": key.hex(), "iv": iv, "protocol_whitelist": "crypto,file"}
    with av.open(f"crypto:{segment}", "r", options=options) as src, av.open(str(dest), "w", format="mpegts") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
        for packet in src.demux(*[s for s in src.streams if s.index in streams]):
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream_index]
            out.mux(packet)
    return dest


NO_FRAMES = ("nothing to encode between start_time and the end of the source, or a framerate too low for the "
             "duration")


def _rendition_name(playlist: Path, workdir: Path) -> str:
    return playlist.relative_to(workdir).as_posix() if playlist.is_relative_to(workdir) else playlist.name


def _probe_output(path: Path, what: str) -> dict:
    """A probe of what FFmpeg wrote: unreadable means an empty or broken output, never a bad source."""
    from vidmill.engine import probe as probing
    from vidmill.errors import EncodeError, ProbeError

    try:
        return probing.probe(path)
    except ProbeError as exc:
        raise EncodeError(f"{what}: FFmpeg wrote no readable media ({exc.message}); likely {NO_FRAMES}") from None


def _probe_file(planned, workdir: Path, first_segment: Path, keys: "HlsKeys | None" = None) -> Path:
    """The file that describes a rendition: its first segment, with the init segment in front for fMP4/WebM."""
    if keys is not None:
        return decrypted_copy(first_segment, keys.key, keys.iv,
                              workdir / f".probe-{planned.stream_index}-{planned.kind}.ts")
    init = next((f for f in planned.files if f.name.startswith("init") or f.name.endswith("_init.mp4")), None)
    if init is None:
        return first_segment
    joined = workdir / f".probe-{planned.stream_index}-{planned.kind}{first_segment.suffix}"
    joined.write_bytes(init.read_bytes() + first_segment.read_bytes())
    return joined


def _attrs(**values) -> str:
    return ",".join(f"{k.replace('_', '-').upper()}={v}" for k, v in values.items() if v is not None)


def _frame_rate(text: str | None) -> str | None:
    try:
        value = float(Fraction(text)) if text else 0
    except (ValueError, ZeroDivisionError):
        return None
    return f"{value:.3f}" if value > 0 else None


class _Finisher:
    """Shared by HLS and CMAF: per rendition, measure bandwidth, read codecs and probe; then write the master."""

    keys: "HlsKeys | None" = None

    def rendition(self, planned, playlist: Path, workdir: Path, before_rates=None) -> tuple[list, dict]:
        """``before_rates(entries)`` runs after the probe and before the sizes are measured (fMP4 sealing)."""
        from vidmill.engine import probe as probing
        from vidmill.errors import EncodeError

        entries = media_playlist(playlist)
        if not entries:
            raise EncodeError(f"{playlist.name} lists no segments")
        missing = [p for _, p in entries if not p.is_file()]
        if missing:
            raise EncodeError(f"{playlist.name} names {missing[0].name}, which FFmpeg did not write")
        if sum(d for d, _ in entries) <= 0:
            raise EncodeError(f"{_rendition_name(playlist, workdir)} has no media: {NO_FRAMES}")
        # FFmpeg encrypts TS segments itself; fMP4 ones are still in the clear here
        ciphertext = self.keys if self.keys is not None and entries[0][1].suffix == ".ts" else None
        probe_path = _probe_file(planned, workdir, entries[0][1], ciphertext)
        facts = probing.output_facts(_probe_output(probe_path, _rendition_name(playlist, workdir)))
        codecs = ",".join(codec_strings(probe_path))
        if probe_path.name.startswith(".probe-"):
            probe_path.unlink()
        if before_rates is not None:
            before_rates(entries)
        planned.extra = {**facts, **rates(entries), "codecs": codecs}
        return entries, facts

    def write_master(self, master: Path, workdir: Path, videos, audios, version: int,
                     iframes: dict | None = None) -> None:
        """``videos``/``audios``: lists of (planned output, playlist path, facts)."""
        rel = lambda p: p.relative_to(master.parent).as_posix()  # noqa: E731
        lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", "#EXT-X-INDEPENDENT-SEGMENTS"]
        group = 'audio' if videos and audios else None
        if group:
            for i, (out, playlist, facts) in enumerate(audios):
                channels = facts.get("audio_channels")
                lines.append("#EXT-X-MEDIA:" + _attrs(
                    type="AUDIO", group_id=f'"{group}"', name=f'"audio_{i + 1}"',
                    default="YES" if i == 0 else "NO", autoselect="YES",
                    channels=f'"{channels}"' if channels else None, uri=f'"{rel(playlist)}"'))
        audio_peak = max((o.extra["bandwidth"] for o, _, _ in audios), default=0) if group else 0
        audio_avg = max((o.extra["average_bandwidth"] for o, _, _ in audios), default=0) if group else 0
        audio_codecs = audios[0][0].extra["codecs"] if group else None
        for out, playlist, facts in videos or audios:
            codecs = out.extra["codecs"] + (f",{audio_codecs}" if audio_codecs else "")
            w, h = facts.get("display_width"), facts.get("display_height")
            lines.append("#EXT-X-STREAM-INF:" + _attrs(
                bandwidth=out.extra["bandwidth"] + audio_peak,
                average_bandwidth=out.extra["average_bandwidth"] + audio_avg,
                codecs=f'"{codecs}"', resolution=f"{w}x{h}" if w and h else None,
                frame_rate=_frame_rate(facts.get("frame_rate")), audio=f'"{group}"' if group else None))
            lines.append(rel(playlist))
        for out, playlist, facts in videos:
            if iframes and out.stream_index in iframes:
                path, bandwidth = iframes[out.stream_index]
                w, h = facts.get("display_width"), facts.get("display_height")
                lines.append("#EXT-X-I-FRAME-STREAM-INF:" + _attrs(
                    bandwidth=bandwidth, codecs=f'"{out.extra["codecs"].split(",")[0]}"',
                    resolution=f"{w}x{h}" if w and h else None, uri=f'"{rel(path)}"'))
        master.write_text("\n".join(lines) + "\n")


class HlsFinisher(_Finisher):
    def __init__(self, fmt, box: Container, layout: HlsLayout, planned: list, workdir: Path, audio_group: bool):
        self.fmt, self.box, self.layout, self.planned = fmt, box, layout, planned
        self.audio_group = audio_group

    def __call__(self, workdir: Path) -> list:
        videos, audios, iframes = [], [], {}
        fmp4 = self.box.segment == "fmp4"
        for out in self.planned:
            if out.kind not in ("video", "audio"):
                continue
            playlist = out.files[0]
            init = out.files[1] if fmp4 else None
            seal = None
            if fmp4 and self.keys is not None:
                def seal(entries, playlist=playlist, init=init):
                    self.keys.seal(playlist, init, [p for _, p in entries])
            if out.kind == "video" and self.fmt.i_frames_only:  # read from clear segments (no AES with I-frames)
                entries = media_playlist(playlist)
                iframes[out.stream_index] = (write_fmp4_iframes(entries, init, out.files[-1]) if fmp4
                                             else write_iframes(entries, out.files[-1]))
            entries, facts = self.rendition(out, playlist, workdir, seal)
            (videos if out.kind == "video" else audios).append((out, playlist, facts))
        version = 7 if fmp4 else (4 if iframes else 3)
        self.write_master(self.layout.master, workdir, videos, audios, version, iframes)
        return []


def write_fmp4_iframes(entries: list[tuple[float, Path]], init: Path, path: Path) -> tuple[Path, int]:
    """An EXT-X-I-FRAMES-ONLY playlist over fMP4 segments: per fragment, one byte range from its ``moof`` to the
    end of the keyframe that opens it, after an EXT-X-MAP of the init segment. Returns (path, peak bits/s)."""
    from vidmill.engine import fmp4
    from vidmill.errors import EncodeError

    try:
        track = fmp4.video_track(init.read_bytes())
        frames = [(k.seconds, k.moof, k.length, segment) for _, segment in entries
                  for k in fmp4.fragment_keyframes(segment.read_bytes(), track)]
    except fmp4.Fmp4Error as exc:
        raise EncodeError(f"{init.parent.name}: I-frame playlist: {exc}") from exc
    start = frames[0][0] if frames else 0.0
    rel = init.relative_to(path.parent).as_posix() if init.is_relative_to(path.parent) else init.name
    return _write_iframe_playlist(frames, start + sum(d for d, _ in entries), path, 7,
                                  [f'#EXT-X-MAP:URI="{rel}"'])


def write_iframes(entries: list[tuple[float, Path]], path: Path) -> tuple[Path, int]:
    """An EXT-X-I-FRAMES-ONLY playlist over TS segments: one byte range per keyframe (from the segment's start
    for its first keyframe, so PAT/PMT come with it). Returns (path, peak bits per second)."""
    import av

    frames: list[tuple[float, int, int, Path]] = []  # (pts seconds, offset, length, segment)
    start = None
    for duration, segment in entries:
        size = segment.stat().st_size
        with av.open(f"file:{segment}", "r", container_options={"protocol_whitelist": "file"}) as c:
            video = c.streams.video[0]
            packets = [(float(p.pts * video.time_base), p.pos, p.is_keyframe) for p in c.demux(video)
                       if p.pts is not None and p.pos is not None and p.pos >= 0]
        positions = sorted({pos for _, pos, _ in packets}) + [size]
        first = True
        for pts, pos, key in packets:
            if key:
                nxt = next(p for p in positions if p > pos)
                offset = 0 if first else pos
                frames.append((pts, offset, nxt - offset, segment))
                first = False
        if start is None and packets:
            start = min(p for p, _, _ in packets)
    end = (start or 0.0) + sum(d for d, _ in entries)
    return _write_iframe_playlist(frames, end, path, 4)


def _write_iframe_playlist(frames: list[tuple[float, int, int, Path]], end: float, path: Path, version: int,
                           extra: list[str] = ()) -> tuple[Path, int]:
    """(pts seconds, offset, length, segment) per I-frame; each lasts until the next one (the last until ``end``)."""
    lines, sizes = [], []
    for i, (pts, offset, length, segment) in enumerate(frames):
        until = frames[i + 1][0] if i + 1 < len(frames) else end
        d = max(until - pts, 0.001)
        sizes.append((d, length))
        lines += [f"#EXTINF:{d:.6f},", f"#EXT-X-BYTERANGE:{length}@{offset}", segment.relative_to(path.parent).as_posix()
                  if segment.is_relative_to(path.parent) else segment.name]
    target = target_duration(d for d, _ in sizes)  # the last I-frame's EXTINF (until the end) included
    peak = math.ceil(peak_rate(sizes, target))
    head = ["#EXTM3U", f"#EXT-X-VERSION:{version}", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-I-FRAMES-ONLY", *extra]
    path.write_text("\n".join(head + lines + ["#EXT-X-ENDLIST"]) + "\n")
    return path, peak


_REPRESENTATION = re.compile(r'<Representation id="(\d+)"[^>]*>')


class DashFinisher(_Finisher):
    """Measured bandwidth into the MPD; with CMAF, the HLS master rewritten from the same segments."""

    def __init__(self, fmt, box: Container, workdir: Path, planned: list, mpd: Path):
        self.fmt, self.box, self.planned, self.mpd = fmt, box, planned, mpd

    def __call__(self, workdir: Path) -> list:
        from vidmill.engine import probe as probing
        from vidmill.errors import EncodeError

        renditions = [o for o in self.planned if o.kind in ("video", "audio")]
        cmaf = any(f.name.startswith("media_") for o in renditions for f in o.files)
        timelines = mpd_timelines(self.mpd.read_text())
        videos, audios = [], []
        for k, out in enumerate(renditions):
            if cmaf:
                playlist = next(f for f in out.files if f.name.startswith("media_"))
                _, facts = self.rendition(out, playlist, workdir)
                (videos if out.kind == "video" else audios).append((out, playlist, facts))
                continue
            segments = out.collect(workdir)[1:]
            durations = timelines.get(str(k), [])
            if not segments or len(durations) != len(segments):
                raise EncodeError(f"the MPD lists {len(durations)} segments of representation {k}, "
                                  f"FFmpeg wrote {len(segments)}")
            entries = list(zip(durations, segments))
            probe_path = _probe_file(out, workdir, segments[0])
            out.extra = {**probing.output_facts(_probe_output(probe_path, f"representation {k}")), **rates(entries)}
            if probe_path.name.startswith(".probe-"):
                probe_path.unlink()
        text = self.mpd.read_text()

        def bandwidth(m: re.Match) -> str:
            tag = m.group(0)
            k = int(m.group(1))
            if k >= len(renditions):
                return tag
            value = renditions[k].extra["bandwidth"]
            if 'bandwidth="' in tag:
                return re.sub(r'bandwidth="\d*"', f'bandwidth="{value}"', tag)
            return tag[:-1] + f' bandwidth="{value}">'

        self.mpd.write_text(_with_duration(_REPRESENTATION.sub(bandwidth, text), mpd_media_end(text)))
        if cmaf:
            master = next(f for f in self.planned[0].files if f.suffix == ".m3u8")
            self.write_master(master, workdir, videos, audios, 7)
        return []


def mpd_timelines(text: str) -> dict[str, list[float]]:
    """Segment durations (seconds) per Representation id, from FFmpeg's SegmentTemplate/SegmentTimeline."""
    ns = {"m": "urn:mpeg:dash:schema:mpd:2011"}
    root = ET.fromstring(text)
    out: dict[str, list[float]] = {}
    for rep in root.iter(f"{{{ns['m']}}}Representation"):
        template = rep.find("m:SegmentTemplate", ns)
        if template is None:
            continue
        scale = int(template.get("timescale", "1"))
        durations: list[float] = []
        for s in template.iterfind("m:SegmentTimeline/m:S", ns):
            d = int(s.get("d")) / scale
            durations += [d] * (1 + int(s.get("r", "0")))
        out[rep.get("id")] = durations
    return out


def mpd_media_end(text: str) -> float:
    """Where the longest representation ends (seconds): its first segment's start plus every duration."""
    ns = {"m": "urn:mpeg:dash:schema:mpd:2011"}
    end = 0.0
    for template in ET.fromstring(text).iter(f"{{{ns['m']}}}SegmentTemplate"):
        scale, at = int(template.get("timescale", "1")), 0
        for s in template.iterfind("m:SegmentTimeline/m:S", ns):
            at = int(s.get("t", at)) + int(s.get("d")) * (1 + int(s.get("r", "0")))
        end = max(end, at / scale)
    return end


def _with_duration(text: str, end: float) -> str:
    """FFmpeg writes mediaPresentationDuration cut to a tenth of a second (5.28 s media said PT5.2S, so players
    ended early or saw media past the end): rewrite it to the millisecond, rounded up."""
    if end <= 0:
        return text
    return re.sub(r'mediaPresentationDuration="[^"]*"', f'mediaPresentationDuration="PT{math.ceil(end * 1000) / 1000:.3f}S"',
                  text, count=1)

"""The planner: one query format + the probed source in, FFmpeg commands and expected files out.

Pure: no subprocess, no file I/O; ``plan_output`` is unit-tested on exact argv. The pieces live beside it:
``video.py`` (frame geometry and the ``-vf`` chain), ``codecs.py`` (encoder option tables and defaults),
``outputs.py`` (one class per output kind).

Command shape, and why::

    ffmpeg -y                                              (the runner adds -progress pipe:1 -nostats)
           [-ss S] [-t D] -protocol_whitelist file         input-side seek (accurate when transcoding)
           -f <demuxer> -i file:<source>                   the demuxer the probe saw, nothing else
           [-f lavfi -t D -i anullsrc=...]                 the silent track of audio_mute
           -map 0:v:0 [-map 0:a:0 | -map 1:a:0]            first video + first audio only, never data/subs
           -map_metadata -1 -map_chapters -1               the source's tags (titles, GPS, encoder) stay out
           -vf <chain> [-sws_flags F] <video encoder args>
           <audio args> | -an                              -an: the source has no audio, or no_audio
           <muxer args> -f <muxer> <workdir>/<kind>-<index>.<ext>

``file:`` means a source name is never read as an option or a protocol; every value is its own argv
element. ``-protocol_whitelist file`` keeps FFmpeg on local files even inside a demuxer that opens more
(without it a local playlist may still reach ``crypto:`` and ``data:``). ``-f`` pins the demuxer PyAV's probe
saw (:data:`DEMUXERS`): FFmpeg 9 is a newer libavformat than PyAV's, so its own content detection can
disagree, and a file the probe read as MP4 must not be re-detected at encode time as an HLS playlist, an
ffconcat script or an image2 pattern (those open other files; the probe refuses them, the encode must not
meet them either). Forced, FFmpeg reads the file with that demuxer or fails ("moov atom not found"); a
source whose probed format is missing or not in the table is refused (:class:`ProbeError`) before any step.
``-f`` rather than ``-format_whitelist <name>``: both encode every file of the test media exactly as
before and both refuse a playlist, but the whitelist still lets FFmpeg 9 run its own detection, so ordinary
media the two builds score differently (MPEG-PS/ES and MP3 detection are close calls) would be refused at
encode time; forcing reads the file the way the probe described it.

``-threads`` is left to FFmpeg for single-output plans; a ladder sets each x264 rung's share
(``streaming.rung_threads``), since its encoders run at once in one process. ``metadata`` outputs have no
FFmpeg step: pass ``probe_json`` and the plan's ``write_files`` holds the JSON to write (else it is empty and
the caller writes it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vidmill.engine import video as geo
from vidmill.engine.codecs import audio_adjustments, audio_args, num, silence_source
from vidmill.engine.outputs import ENCODED_OUTPUTS
from vidmill.engine.copies import AUDIO_FILE_OUTPUTS, plan_audio_file, plan_repack
from vidmill.engine.streaming import STREAMING_OUTPUTS, plan_streaming
from vidmill.errors import ProbeError, QueryError, UnsupportedField

GLOBAL_ARGS = ("-y",)  # runner/ffmpeg.py adds -hide_banner -nostats -progress pipe:1 -loglevel +level
NULL_OUTPUT = ("-f", "null", "/dev/null")  # pass 1 writes only its stats file
INPUT_PROTOCOLS = ("-protocol_whitelist", "file")  # input option: the source and anything it names

from vidmill.engine.demuxers import DEMUXERS, NOT_MEDIA as _NOT_MEDIA  # noqa: E402  (re-exported)


def input_args(info) -> list[str]:
    """The options before ``-i``: local files only, read with the demuxer the probe saw (or ProbeError)."""
    name = info.format_name
    demuxer = DEMUXERS.get(name) if name else None
    if demuxer is None:
        if not name:
            raise ProbeError("the probe reported no container format for the source")
        what = _NOT_MEDIA.get(name)
        raise ProbeError(f"the source is {what}, not a media file" if what else
                         f"the source's container ({name}) is not one vidmill reads")
    return [*INPUT_PROTOCOLS, "-f", demuxer]


@dataclass
class Step:
    argv: list[str]
    duration_s: float | None  # media seconds this step processes (progress = out_time / duration_s)
    label: str


@dataclass(frozen=True)
class Notice:
    """Something the engine changed, ignored or left out, in vidmill's own words (dialects render it).

    ``code``: ``adjusted`` (a value was changed or ignored; ``field`` names it), ``skipped`` (the output or
    stream is not made; ``message`` says why), ``source_size`` (encoded at the source's size).
    ``format_index``/``stream_index`` say which output (and which rendition of it) the notice is about.
    """

    code: str
    message: str
    field: str | None = None
    format_index: int = 0
    stream_index: int = 0

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "field": self.field,
                "format": self.format_index, "stream": self.stream_index}


@dataclass
class PlannedOutput:
    """One output an FFmpeg run makes: a file, or one rendition (or the manifest) of a streaming output.

    ``files`` are known before the run; ``patterns`` (globs relative to the work dir) match the files only the
    run can name (segments). ``probe`` is the file whose probe describes the output (None: nothing to probe).
    ``kind``: ``file`` (one media file), ``metadata`` (JSON), ``manifest`` (a master playlist or MPD),
    ``video`` / ``audio`` (one rendition of a streaming output). ``link`` is the file status points at for this
    output when it is not ``files[0]`` (a DASH rendition has no playlist of its own: its MPD).
    """

    format_index: int
    stream_index: int
    kind: str
    files: list[Path]
    patterns: tuple[str, ...] = ()
    probe: Path | None = None
    user_tag: str | None = None
    extra: dict = field(default_factory=dict)  # facts the run's ``finish`` measured (bandwidth, codecs, duration)
    link: Path | None = None

    def collect(self, workdir: Path) -> list[Path]:
        """Every file of this output once the run is over: the known ones, then the pattern matches in order."""
        found = list(self.files)
        for pattern in self.patterns:
            found += sorted(p for p in workdir.glob(pattern) if p not in found)
        return found


@dataclass
class Plan:
    """One FFmpeg run (``steps``: its passes) and the N outputs it makes. ``main`` is what a status URL points
    at (the file, the master playlist, the MPD); ``finish`` runs after the steps (writes manifests measured
    from the real segments) and may add notices."""

    steps: list[Step]
    outputs: list[PlannedOutput]
    notices: list[Notice] = field(default_factory=list)
    skipped: bool = False
    skip_reason: str | None = None
    write_files: dict[Path, bytes] = field(default_factory=dict)
    main: Path | None = None
    finish: Callable[[Path], list[Notice]] | None = None
    hardware_encoder: str | None = None  # the hardware encoder the steps run (None: software only)

    def __post_init__(self):
        if self.main is None and self.outputs and self.outputs[0].files:
            self.main = self.outputs[0].files[0]


@dataclass(frozen=True)
class UpscaleDecision:
    """What the upscale rule does to one format: nothing, skip it, or encode it at the source size."""

    skip: bool = False
    source_size: bool = False
    reason: str | None = None


SKIP_REASON = "the requested size is larger than the source and upscale is off"
SOURCE_SIZE_REASON = ("every output is larger than the source and upscale is off: "
                      "the first one is encoded at the source size")


def decide_upscale(query, info) -> dict[int, UpscaleDecision]:
    """Seed: with ``upscale`` off, formats asking for a side larger than the input are skipped; when that is
    every sized output, only the first runs, at the input's dimensions. Keys are the indexes of the
    encoded (video) formats; ``upscale`` on gives every one the plain decision."""
    sized = [(i, f) for i, f in enumerate(query.format) if f.output in ENCODED_OUTPUTS]
    if query.upscale or not info.has_video:
        return {i: UpscaleDecision() for i, _ in sized}
    larger = {i for i, f in sized if geo.is_larger(geo.requested(f), geo.base_size(info, f.rotate))}
    if sized and len(larger) == len(sized):
        first = sized[0][0]
        return {i: UpscaleDecision(source_size=True, reason=SOURCE_SIZE_REASON) if i == first
                else UpscaleDecision(skip=True, reason=SKIP_REASON) for i, _ in sized}
    return {i: UpscaleDecision(skip=True, reason=SKIP_REASON) if i in larger else UpscaleDecision()
            for i, _ in sized}


def expected_duration(fmt, info, field_prefix: str) -> float | None:
    """Seconds of output: ``duration`` cut to what remains of the source after ``start_time``."""
    start = float(fmt.start_time or 0)
    total = info.duration
    if total:
        remaining = total - start
        if remaining <= 0:
            raise QueryError(f"{field_prefix}.start_time: {num(start)} s is beyond the source's {num(total)} s",
                             field=f"{field_prefix}.start_time")
        return min(float(fmt.duration), remaining) if fmt.duration else remaining
    return float(fmt.duration) if fmt.duration else None


def plan_output(fmt, *, source: Path, info, workdir: Path, ffmpeg: str, index: int, upscale: bool,
                decision: UpscaleDecision | None = None, probe_json: dict | None = None,
                hardware: dict[str, dict[str, frozenset[str]]] | None = None) -> Plan:
    """Plan format ``index`` of a query.

    ``decision`` comes from :func:`decide_upscale` over the whole query; without it the format is judged
    alone (larger than the source with ``upscale`` off: skipped). ``probe_json`` only matters for
    ``metadata`` outputs. ``hardware``: the hardware encoders detected working (``ffmpeg.hardware_encoders``).
    """
    prefix = f"format[{index}]"
    notices: list[Notice] = []

    def warn(message: str, key: str | None = None) -> None:
        notices.append(Notice("adjusted", message, f"{prefix}.{key}" if key else None, index))

    if fmt.output == "metadata":
        path = workdir / f"metadata-{index}.json"
        files = {path: json.dumps(probe_json, indent=2).encode()} if probe_json is not None else {}
        return Plan(steps=[], outputs=[PlannedOutput(index, 0, "metadata", [path], user_tag=fmt.tag)],
                    notices=notices, write_files=files)
    if fmt.output in AUDIO_FILE_OUTPUTS or fmt.output == "repack":
        make = plan_repack if fmt.output == "repack" else plan_audio_file
        return make(fmt, source=source, info=info, workdir=workdir, ffmpeg=ffmpeg, index=index,
                    input_args=input_args(info), duration=expected_duration(fmt, info, prefix))
    if fmt.output in STREAMING_OUTPUTS:
        return plan_streaming(fmt, source=source, info=info, workdir=workdir, ffmpeg=ffmpeg, index=index,
                              upscale=upscale, input_args=input_args(info),
                              duration=expected_duration(fmt, info, prefix))
    kind = ENCODED_OUTPUTS.get(fmt.output)
    if kind is None:
        raise UnsupportedField(f"{prefix}.output: output {fmt.output} is not supported yet by vidmill",
                               field=f"{prefix}.output")
    if not info.has_video:
        raise QueryError(f"{prefix}.output: the source has no video stream for a {fmt.output} output",
                         field=f"{prefix}.output")
    source_args = input_args(info)
    if decision is None:
        larger = geo.is_larger(geo.requested(fmt), geo.base_size(info, fmt.rotate))
        decision = UpscaleDecision(skip=True, reason=SKIP_REASON) if larger and not upscale else UpscaleDecision()
    if decision.skip:
        notices.append(Notice("skipped", decision.reason or SKIP_REASON, None, index))
        return Plan(steps=[], outputs=[], notices=notices, skipped=True, skip_reason=decision.reason)
    if decision.source_size:
        notices.append(Notice("source_size", decision.reason or SOURCE_SIZE_REASON, None, index))

    duration = expected_duration(fmt, info, prefix)
    frame = geo.geometry(fmt, info, source_size=decision.source_size)
    for note in frame.notes:
        warn(note, "aspect_ratio")
    encoder = kind.video_encoder(fmt, warn, f"{prefix}.video_codec", hardware)
    two_pass = bool(fmt.two_pass)
    if two_pass and not fmt.bitrate:
        warn("two_pass needs a bitrate; encoded in one pass", "two_pass")
        two_pass = False
    video = ["-vf", frame.vf]
    vcp = fmt.video_codec_parameters
    if vcp is not None and vcp.sws_flags:
        video += ["-sws_flags", vcp.sws_flags]
    video += encoder.args(geo.output_fps(fmt, info), two_pass)

    inputs = []
    if fmt.start_time:
        inputs += ["-ss", num(fmt.start_time)]
    if fmt.duration:
        inputs += ["-t", num(fmt.duration)]
    inputs += [*source_args, "-i", f"file:{source}"]
    out = kind.path(workdir, index)

    audio_in: list[str] = []
    maps = ["-map", "0:v:0"]
    if not fmt.no_audio and (fmt.audio_mute or info.has_audio):
        codec = kind.audio_encoder(fmt.audio_codec, warn)
        for message, key in audio_adjustments(fmt, codec):
            warn(message, key)
        audio = audio_args(fmt, codec)
        if fmt.audio_mute:
            audio_in = ["-f", "lavfi", *(["-t", num(duration)] if duration else []),
                        "-i", silence_source(fmt, codec)]
            maps += ["-map", "1:a:0"]
            if not duration:
                audio.append("-shortest")
        else:
            maps += ["-map", "0:a:0"]
    else:
        audio = ["-an"]
    common = ["-map_metadata", "-1", "-map_chapters", "-1"]

    steps: list[Step] = []
    final_video = video
    if two_pass and encoder.runs_passes:
        log = workdir / f"pass-{index}"
        steps.append(Step([ffmpeg, *GLOBAL_ARGS, *inputs, "-map", "0:v:0", *common, *video,
                           *encoder.pass_args(1, log), "-an", *NULL_OUTPUT], duration, "pass 1 of 2"))
        final_video = video + encoder.pass_args(2, log)
    argv = [ffmpeg, *GLOBAL_ARGS, *inputs, *audio_in, *maps, *common, *final_video, *audio,
            *kind.mux_args(encoder), "-f", kind.muxer, str(out)]
    steps.append(Step(argv, duration, "pass 2 of 2" if len(steps) else "encode"))
    return Plan(steps=steps, outputs=[PlannedOutput(index, 0, "file", [out], probe=out, user_tag=fmt.tag)],
                notices=notices, hardware_encoder=encoder.name if encoder.hardware else None)

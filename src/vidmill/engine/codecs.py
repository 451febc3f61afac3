"""Encoder defaults, the shared video encoder base and its helpers, and the audio options.

The encoders themselves are in ``h26x.py`` (libx264, libx265) and ``vpx.py`` (libvpx-vp9, libvpx).

Every value that reaches argv comes from the validated query model and is rendered here from its number or
enum (``str(int(v))``, table look-ups), never pasted into an option name. Each Qencode
``video_codec_parameters`` entry maps to the encoder's own FFmpeg AVOption where one exists (all of them do
for libx264 in FFmpeg 9: ``ffmpeg -h encoder=libx264`` plus the generic codec options ``-refs -subq
-trellis -me_range -i_qfactor -qcomp -qmin -qmax -qdiff -cmp -flags``); libx265 takes the rest as
``-x265-params key=value:...``. Entries an encoder has no use for become warnings, never silent drops.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from vidmill.core.query.vocabulary import DEFAULT_PROFILES, choose_profile

# --- named defaults -------------------------------------------------------------------------------------
# "faster": on this ~1-core box 720p runs at ~62 fps (medium ~40, veryfast ~84); it keeps 1080p near
# real time while costing only a few percent of bitrate against medium at the same CRF, whereas veryfast
# and below visibly drop quality (fewer refs, no trellis/mixed-refs). One constant, overridden by `preset`.
DEFAULT_X264_PRESET = "faster"
DEFAULT_X265_PRESET = "fast"  # x265 medium is ~5x slower than x264 medium; fast keeps jobs bounded
DEFAULT_X264_CRF = 23  # x264's own default, spelled out so the plan is explicit
DEFAULT_X265_CRF = 28  # x265's own default (visually ~x264 23)
DEFAULT_VP9_CRF = 31  # Google's VOD guide value for 720p-1080p, constant quality with -b:v 0
DEFAULT_VP8_CRF = 10  # libvpx VP8 constrained quality needs a cap...
DEFAULT_VP8_CAP_K = 2000  # ...so it gets one, in kbps, when no bitrate is given
VPX_DEADLINE, VPX_CPU_USED = "good", 4  # libvpx "good" at speed 4: ~real time on small frames
DEFAULT_PIX_FMT = "yuv420p"  # seed: "Defaults to yuv420p"; explicit so 4:2:2 sources don't stay 4:2:2
DEFAULT_KEYFRAME_FRAMES = 90  # seed: "Keyframe interval (in frames). Defaults to 90."
# Scene-cut keyframes off unless `sc_threshold` is given: the seed's keyframe interval is then exact (every
# N frames), which is what segmenters need for aligned HLS/DASH renditions. The cost is a little quality
# right after hard cuts.
DEFAULT_SC_THRESHOLD = 0

DEFAULT_AUDIO_BITRATE_K = 64  # seed
DEFAULT_AUDIO_SAMPLE_RATE = 44100  # seed
DEFAULT_AUDIO_CHANNELS = 2  # seed; `-ac 2` downmixes 5.1 with FFmpeg's standard matrix
OPUS_SAMPLE_RATES = (48000, 24000, 16000, 12000, 8000)  # libopus accepts only these

Warn = Callable[[str, str], None]  # (message, details)

_SAFE = re.compile(r"^[A-Za-z0-9_.+-]+$")


def num(v) -> str:
    """A validated number as FFmpeg reads it: ``10``, ``2.5`` (no exponent, no trailing zeros)."""
    f = float(v)
    if f.is_integer():
        return str(int(f))
    return format(f, ".6f").rstrip("0").rstrip(".")


def safe(v) -> str:
    """A validated enum-ish value; refuse anything that could be read as more than one token."""
    s = str(v)
    if not _SAFE.match(s):
        raise ValueError(f"unsafe option value {s!r}")
    return s


def level_str(level) -> str:
    """Qencode levels are two digits (``41``); encoders want ``4.1``. ``"4.1"`` passes through."""
    s = str(level).strip()
    if re.fullmatch(r"\d\d", s):
        return f"{s[0]}.{s[1]}"
    return num(s)


def tokens(value: str) -> list[tuple[bool, str]]:
    """``"+bpyramid-fastpskip"`` -> [(True, "bpyramid"), (False, "fastpskip")]. ``×`` reads as ``x``."""
    text = str(value).replace("×", "x").replace(",", "")
    return [(sign != "-", name.lower()) for sign, name in re.findall(r"([+-]?)([A-Za-z0-9_]+)", text)]


def kbps(value, mbps: bool) -> str:
    """``max_rate``/``min_rate``/``bufsize``: Mbps for libx264 (seed), kbps for every other encoder."""
    return f"{round(float(value) * 1000) if mbps else round(float(value))}k"


def rate_control(fmt, vcp, *, crf_default: int | None, crf_args: Callable[[str], list[str]],
                 mbps: bool, two_pass: bool, vbv_cap: bool = True) -> list[str]:
    """Quality (CRF) wins over bitrate; with both, the bitrate caps it (x26x: as VBV ``-maxrate``; libvpx
    takes it in ``crf_args`` as the constrained-quality target)."""
    args: list[str] = []
    maxrate = vcp.max_rate if vcp else None
    minrate = vcp.min_rate if vcp else None
    bufsize = vcp.bufsize if vcp else None
    if two_pass:
        args += ["-b:v", f"{int(fmt.bitrate)}k"]
    elif fmt.quality is not None:
        args += crf_args(num(fmt.quality))
        if vbv_cap and fmt.bitrate and maxrate is None:
            return args + ["-maxrate", f"{int(fmt.bitrate)}k", "-bufsize", f"{2 * int(fmt.bitrate)}k"]
    elif fmt.bitrate:
        args += ["-b:v", f"{int(fmt.bitrate)}k"]
    elif crf_default is not None:
        args += crf_args(str(crf_default))
    if maxrate is not None:
        args += ["-maxrate", kbps(maxrate, mbps)]
    if minrate is not None:
        args += ["-minrate", kbps(minrate, mbps)]
    if bufsize is not None:
        args += ["-bufsize", kbps(bufsize, mbps)]
    elif maxrate is not None:
        args += ["-bufsize", kbps(2 * float(maxrate), mbps)]  # seed: max_rate "requires bufsize"
    return args


def gop_frames(seconds: float, fps: float | None) -> int:
    """GOP length in frames for keyframes every ``seconds``: the first frame at or after the period, which is
    where ``-force_key_frames expr:gte(t,n_forced*S)`` puts them. Rounding down (0.5 s at 25 fps: 12, the forced
    one lands on 13) made x264 add an IDR of its own one frame before every forced one."""
    return max(1, math.ceil(float(seconds) * (fps or 25.0) - 1e-3))


def keyframe_args(fmt, fps: float | None) -> list[str]:
    spec = fmt.keyframe_spec or (DEFAULT_KEYFRAME_FRAMES, "frames")
    value, unit = spec
    if unit == "frames":
        n = str(int(value))
        return ["-g", n, "-keyint_min", n]
    seconds = num(value)
    gop = gop_frames(value, fps)
    return ["-force_key_frames", f"expr:gte(t,n_forced*{seconds})", "-g", str(gop), "-keyint_min", str(gop)]


class VideoEncoder(ABC):
    """Defaults shared by all encoders; subclasses override only what differs."""

    name: ClassVar[str]
    pix_fmts: ClassVar[tuple[str, ...]] = ("yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuv420p10le")
    runs_passes: ClassVar[bool] = True  # two_pass is two FFmpeg runs (a first pass writing stats)
    hardware: ClassVar[bool] = False  # runs on a device (a GPU) rather than the CPU

    def __init__(self, fmt, warn: Warn):
        self.fmt, self.vcp, self.warn = fmt, fmt.video_codec_parameters, warn
        # Segmented outputs (HLS/DASH): (period in seconds as FFmpeg reads it, GOP frames). Keyframes are then
        # forced on every period boundary, scene cuts add none, GOPs are closed: every rendition of a ladder has
        # its keyframes at the same times. ``bframes`` pins one B-frame structure for every rung.
        self.segment: tuple[str, int] | None = None
        self.bframes: int | None = None
        self.threads: int | None = None  # set per rung when several encoders share one process (None: FFmpeg's)

    def pix_fmt(self) -> str:
        want = self.fmt.pix_format or DEFAULT_PIX_FMT
        if want in self.pix_fmts:
            return want
        self.warn(f"pix_format {want} is not supported by {self.name}; encoded as {DEFAULT_PIX_FMT}", "pix_format")
        return DEFAULT_PIX_FMT

    def args(self, fps: float | None, two_pass: bool) -> list[str]:
        return [
            "-c:v", self.name, *self.speed_args(), *self.profile_args(), "-pix_fmt", self.pix_fmt(),
            *self.rate_args(two_pass),
            *(self.aligned_keyframe_args() if self.segment else keyframe_args(self.fmt, fps)), *self.param_args(),
        ]

    def aligned_keyframe_args(self) -> list[str]:
        period, gop = self.segment
        args = ["-force_key_frames", f"expr:gte(t,n_forced*{period})", "-g", str(gop), "-keyint_min", str(gop)]
        args += ["-bf", str(self.bframes)] if self.bframes is not None else []
        return args + (["-threads", str(self.threads)] if self.threads is not None else [])

    def scene_cut(self, default) -> str:
        """The scene-cut threshold: the user's, or the default; always 0 in a segmented output."""
        asked = self.vcp.sc_threshold if self.vcp and self.vcp.sc_threshold is not None else None
        if self.segment:
            if asked:
                self.warn("video_codec_parameters.sc_threshold is 0 in a segmented output: every rendition needs "
                          "keyframes at the same times", "video_codec_parameters.sc_threshold")
            return "0"
        return num(asked if asked is not None else default)

    def speed_args(self) -> list[str]:
        return []

    def profile_args(self) -> list[str]:
        """``-profile:v`` from the one codec/profile table (``core.query.vocabulary.CODEC_PROFILES``): the asked
        profile, upgraded (with a warning) when it cannot carry the pixel format."""
        asked = (self.vcp and self.vcp.vprofile) or self.fmt.profile
        if asked is None and self.name not in DEFAULT_PROFILES:
            return []  # the encoder chooses (and pix_fmt's own warnings are not said twice)
        profile, note = choose_profile(self.name, None if asked is None else str(asked), self.pix_fmt())
        if note:
            self.warn(note, "profile")
        return ["-profile:v", safe(profile)] if profile else []

    @abstractmethod
    def rate_args(self, two_pass: bool) -> list[str]:
        """Every encoder states its own rate control."""

    def param_args(self) -> list[str]:
        return []

    def pass_args(self, n: int, log: Path) -> list[str]:
        return ["-pass", str(n), "-passlogfile", str(log)]

    def tag_args(self) -> list[str]:
        return []

    def unused(self, *names: str) -> None:
        for key in names:
            if self.vcp is not None and getattr(self.vcp, key, None) is not None:
                self.warn(f"video_codec_parameters.{key} is not used by {self.name}", f"video_codec_parameters.{key}")


# Generic -flags FFmpeg 9 still has. pass1/pass2 are ours (two_pass); qscale/emu_edge/truncated/cbp/qprd are gone.
FFMPEG_FLAGS = {"mv4", "qpel", "loop", "gray", "psnr", "ildct", "low_delay", "global_header", "bitexact", "aic",
                "ilme", "cgop"}

def flags_arg(value, warn: Warn) -> list[str]:
    kept = []
    for on, name in tokens(value):
        if name in FFMPEG_FLAGS:
            kept.append(("+" if on else "-") + name)
        elif name in ("pass1", "pass2"):
            warn(f"video_codec_parameters.flags {name} is ignored: use two_pass", "video_codec_parameters.flags")
        else:
            warn(f"video_codec_parameters.flags {name} is not supported by this FFmpeg; ignored",
                 "video_codec_parameters.flags")
    return ["-flags", "".join(kept)] if kept else []


CHANNEL_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


# Where the query allows more than an encoder takes (it allows up to 192 kHz and 8 channels), checked by encoding
# with FFmpeg 9: the AAC encoder stops at 96 kHz, LAME at 48 kHz and 2 channels. Every lower rate the query allows
# is one both take, so the highest they take is the one to fall back to.
AUDIO_MAX_RATE = {"aac": 96000, "libmp3lame": 48000}
AUDIO_MAX_CHANNELS = {"libmp3lame": 2}


def audio_settings(fmt, encoder: str) -> tuple[int, int, int]:
    """(bitrate kbps, sample rate, channels) for ``encoder`` with the seed's defaults, within what the encoder
    takes (``audio_adjustments`` says what was changed)."""
    bitrate = int(fmt.audio_bitrate or DEFAULT_AUDIO_BITRATE_K)
    rate = int(fmt.audio_sample_rate or DEFAULT_AUDIO_SAMPLE_RATE)
    channels = int(fmt.audio_channels_number or DEFAULT_AUDIO_CHANNELS)
    if encoder == "libopus" and rate not in OPUS_SAMPLE_RATES:
        rate = 48000  # Opus codes at 48 kHz internally; 44.1 kHz (the default) is resampled
    rate = min(rate, AUDIO_MAX_RATE.get(encoder, rate))
    channels = min(channels, AUDIO_MAX_CHANNELS.get(encoder, channels))
    return bitrate, rate, channels


def audio_adjustments(fmt, encoder: str) -> list[tuple[str, str]]:
    """(warning, field) for each asked audio setting ``encoder`` cannot take, as ``audio_settings`` changed it."""
    _, rate, channels = audio_settings(fmt, encoder)
    out = []
    if fmt.audio_sample_rate and int(fmt.audio_sample_rate) != rate:
        out.append((f"{encoder} cannot encode at {int(fmt.audio_sample_rate)} Hz; encoded at {rate} Hz",
                    "audio_sample_rate"))
    if fmt.audio_channels_number and int(fmt.audio_channels_number) != channels:
        out.append((f"{encoder} carries at most {channels} channels; downmixed to {CHANNEL_LAYOUTS[channels]}",
                    "audio_channels_number"))
    return out


def channel_args(encoder: str, channels: int) -> list[str]:
    """``-ac N``; three channels as ``3.0`` (L R C) for the codecs whose channel orders have no 2.1 (FFmpeg's
    default for three): Opus and Vorbis refuse or mislabel 2.1, FLAC mislabels it."""
    if channels == 3 and encoder in ("libopus", "libvorbis", "flac"):
        return ["-ch_layout", "3.0"]
    return ["-ac", str(channels)]


def audio_args(fmt, encoder: str) -> list[str]:
    bitrate, rate, channels = audio_settings(fmt, encoder)
    args = ["-c:a", encoder, "-b:a", f"{bitrate}k", "-ar", str(rate), *channel_args(encoder, channels)]
    if encoder == "libopus" and channels > 2:
        args += ["-mapping_family", "1"]  # surround Opus needs the Vorbis channel mapping
    return args


def silence_source(fmt, encoder: str) -> str:
    """lavfi description of the silent track for ``audio_mute`` (numbers only)."""
    _, rate, channels = audio_settings(fmt, encoder)
    return f"anullsrc=r={rate}:cl={CHANNEL_LAYOUTS.get(channels, 'stereo')}"

"""Output kinds that FFmpeg encodes: one small class each, overriding only what differs.

A kind knows its container (muxer, file name), which encoders it takes and picks by default, how it
answers an audio codec it cannot carry, and its muxer options. ``plan.py`` builds the command from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from vidmill.engine.codecs import VideoEncoder, Warn
from vidmill.engine.h26x import X264, X265
from vidmill.engine.nvenc import Nvenc
from vidmill.engine.vpx import Vp8, Vp9
from vidmill.errors import QueryError, UnsupportedField

VIDEO_ENCODERS: dict[str, type[VideoEncoder]] = {c.name: c for c in (X264, X265, Vp9, Vp8)}
# software encoder -> the hardware encoder a format asking for ``hardware`` runs instead, where it works
HARDWARE_ENCODERS: dict[str, type[VideoEncoder]] = {"libx264": Nvenc}
FDK_FALLBACK_MESSAGE = "libfdk_aac is not available; encoded with FFmpeg's native AAC encoder"


class EncodedOutput:
    name: ClassVar[str]
    stem: ClassVar[str] = "video"
    muxer: ClassVar[str]
    video_codecs: ClassVar[tuple[str, ...]]  # first is the default
    audio_codecs: ClassVar[tuple[str, ...]]  # first is the default

    def path(self, workdir: Path, index: int) -> Path:
        # Never from user strings; the index keeps formats sharing one workdir apart.
        return workdir / f"{self.stem}-{index}.{self.name}"

    def video_encoder(self, fmt, warn: Warn, field: str, hardware=None) -> VideoEncoder:
        """The format's encoder; ``hardware`` (encoder name -> the options its build lists) holds the
        hardware encoders detected working on this host, run for formats that ask for ``hardware``."""
        codec = fmt.video_codec or self.video_codecs[0]
        if codec not in VIDEO_ENCODERS:
            raise UnsupportedField(f"{field}: {codec} is not supported yet by vidmill", field=field)
        if codec not in self.video_codecs:
            raise QueryError(f"{field}: {codec} cannot go into a {self.name} output", field=field)
        hw = HARDWARE_ENCODERS.get(codec)
        if fmt.hardware and hw is not None and hardware and hw.name in hardware:
            return hw(fmt, warn, hardware[hw.name])
        return VIDEO_ENCODERS[codec](fmt, warn)

    def audio_encoder(self, requested: str | None, warn: Warn) -> str:
        if requested is None or requested in self.audio_codecs:
            return requested or self.audio_codecs[0]
        return self.audio_fallback(requested, warn)

    def audio_fallback(self, requested: str, warn: Warn) -> str:
        default = self.audio_codecs[0]
        warn(f"{requested} cannot go into a {self.name} output; encoded with {default}", "audio_codec")
        return default

    def mux_args(self, encoder: VideoEncoder) -> list[str]:
        return []


class Mp4(EncodedOutput):
    name = muxer = "mp4"
    video_codecs = ("libx264", "libx265", "libvpx-vp9")
    audio_codecs = ("aac",)

    def audio_fallback(self, requested, warn):
        if requested == "libfdk_aac":  # no open build carries it (qencode-wire.md): never fail for it
            warn(FDK_FALLBACK_MESSAGE, "audio_codec")
            return "aac"
        return super().audio_fallback(requested, warn)

    def mux_args(self, encoder):
        # moov first so players start before the whole file is downloaded
        return [*encoder.tag_args(), "-movflags", "+faststart"]


class Webm(EncodedOutput):
    name = muxer = "webm"
    video_codecs = ("libvpx-vp9", "libvpx")
    audio_codecs = ("libopus", "libvorbis")


ENCODED_OUTPUTS: dict[str, EncodedOutput] = {kind.name: kind() for kind in (Mp4, Webm)}

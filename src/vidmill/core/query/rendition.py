"""Renditions: the frame/rate/codec/audio fields shared by Format and Stream, and Stream itself."""

from fractions import Fraction

from pydantic import model_validator

from vidmill.core.query.fields import (
    Dimension, FileName, Flag, Text, _choice, _int, _list, _Model, _t, _vidmill_error,
)
from vidmill.core.query.leaves import Logo, VideoCodecParameters
from vidmill.core.query.media_values import (
    _as_aspect, _as_color, _as_keyframe, _as_pan, _as_profile, _as_rate, _as_rotate, _as_sample_rate, _as_size,
)
from vidmill.core.query.values import _as_choice_re, _choices
from vidmill.core.query.vocabulary import (
    AUDIO_CODECS, COLOR_PRIMARIES, COLOR_RANGES, COLOR_SPACES, COLOR_TRCS, H26X_CODECS, IMAGE_OUTPUTS,
    PIX_FORMATS, PROFILES_BY_CODEC, VIDEO_CODECS,
)


class _Rendition(_Model):
    """Fields a format carries for file outputs and each stream carries for HLS/DASH renditions."""

    # frame
    size: _t(str, _as_size) = None
    width: Dimension = None
    height: Dimension = None
    resolution: Dimension = None
    rotate: _t(int, lambda v: _as_rotate(v)) = None
    aspect_ratio: _t(str, _as_aspect) = None
    resize_mode: _choice(("scale", "crop")) = None
    framerate: _t(str, _as_rate) = None
    framerate_limit: _t(str, _as_rate) = None
    keyframe: _t(str, _as_keyframe) = None
    deinterlace: Flag = None
    hdr_to_sdr: Flag = None
    # colour
    color_space: _t(str, lambda v: _as_color(v, COLOR_SPACES)) = None
    color_range: _t(str, lambda v: _as_color(v, COLOR_RANGES)) = None
    color_trc: _t(str, lambda v: _as_color(v, COLOR_TRCS)) = None
    color_primaries: _t(str, lambda v: _as_color(v, COLOR_PRIMARIES)) = None
    # rate
    quality: _int(0, 100) = None
    bitrate: _int(1, 200000) = None
    two_pass: Flag = None
    optimize_bitrate: Flag = None
    min_crf: _int(0, 51) = None
    max_crf: _int(0, 51) = None
    adjust_crf: _int(-10, 10) = None
    # codec
    video_codec: _choice(VIDEO_CODECS) = None
    profile: _t(str, _as_profile) = None
    pix_format: _choice(PIX_FORMATS) = None
    video_codec_parameters: VideoCodecParameters | None = None
    tag_video: _t(str, lambda v: _as_choice_re(v, r"[A-Za-z0-9]{4}", "a four-character codec tag, e.g. hvc1")) = None
    # audio
    audio_codec: _choice(AUDIO_CODECS) = None
    audio_bitrate: _int(8, 1024) = None
    audio_sample_rate: _t(int, lambda v: _as_sample_rate(v)) = None
    audio_channels_number: _int(1, 8) = None
    audio_mute: Flag = None
    audio_pan: _t(dict[str, str], _as_pan) = None
    # overlays and labels
    logo: _list(Logo, 1, 20, one_or_many=True) = None
    tag: Text = None

    @model_validator(mode="after")
    def _check_rendition(self) -> "_Rendition":
        codec = self.video_codec
        if self.quality is not None:
            if codec in H26X_CODECS and self.quality > 51:
                raise _vidmill_error("quality", f"must be between 0 and 51 for {codec}, got {self.quality}")
            if self.quality > 63 and getattr(self, "output", None) not in IMAGE_OUTPUTS:
                raise _vidmill_error("quality", f"must be between 0 and 63, got {self.quality}")
        if self.profile is not None and codec in PROFILES_BY_CODEC and self.profile not in PROFILES_BY_CODEC[codec]:
            raise _vidmill_error("profile", f"for {codec} must be one of {_choices(PROFILES_BY_CODEC[codec])}; "
                                            f"got {self.profile}")
        if self.min_crf is not None and self.max_crf is not None and self.min_crf > self.max_crf:
            raise _vidmill_error("min_crf", f"must not exceed max_crf ({self.max_crf})")
        return self

    @property
    def size_wh(self) -> tuple[int, int] | None:
        """``size`` as (width, height)."""
        if self.size is None:
            return None
        width, height = self.size.split("x")
        return int(width), int(height)

    @property
    def keyframe_spec(self) -> tuple[int | float, str] | None:
        """``keyframe`` as (60, "frames") or (3.0, "seconds")."""
        if self.keyframe is None:
            return None
        if self.keyframe.endswith("s"):
            return float(self.keyframe[:-1]), "seconds"
        return int(self.keyframe), "frames"

    @property
    def framerate_value(self) -> str | None:
        """The validated frame rate as FFmpeg takes it: "30", "29.97" or "30000/1001"."""
        return self.framerate

    @property
    def framerate_fraction(self) -> Fraction | None:
        """The frame rate as an exact fraction (29.97 -> 2997/100)."""
        return None if self.framerate is None else Fraction(self.framerate)

    @property
    def aspect_ratio_value(self) -> float | None:
        """``aspect_ratio`` as a float ("16:9" -> 1.777...)."""
        if self.aspect_ratio is None:
            return None
        if ":" in self.aspect_ratio:
            num, den = self.aspect_ratio.split(":")
            return float(num) / float(den)
        return float(self.aspect_ratio)


class Stream(_Rendition):
    """One rendition of an HLS/DASH output."""

    chunklist_name: FileName = None

"""The top-level query models: ``Query`` (the ``query`` object of start_encode2) and each ``Format``."""

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from vidmill.core.query.fields import (
    FileName, Flag, HttpUrl, Language, LanguageCode, Seconds, Token, _choice, _float, _int, _list, _Model, _t,
    _vidmill_error,
)
from vidmill.core.query.leaves import CencDrm, Destination, Encryption, FpsDrm, Inject360, StitchItem, Subtitles
from vidmill.core.query.rendition import Stream, _Rendition
from vidmill.core.query.values import _as_choice, _as_choice_re, _as_url, _choices, _number_text
from vidmill.core.query.vocabulary import CONTAINER_AUDIO_CODECS, CONTAINER_VIDEO_CODECS, OUTPUTS, SOURCE_SCHEMES


class Format(_Rendition):
    """One output of the task."""

    output: Annotated[str, BeforeValidator(lambda v: _as_choice(v, OUTPUTS))]
    start_time: Seconds = None
    duration: _float(0, 1e6, above_lo=True) = None
    destination: _list(Destination, 1, 10, one_or_many=True) = None
    allow_soft_fail: Flag = None
    # vidmill's own, not Qencode's: leave audio out of the output (Octet's default); Qencode requests
    # carrying it are refused by check_supported, dialects that need it allow it there
    no_audio: Flag = None
    # vidmill's own too (Octet's NVENC-style rate control; refused for Qencode the same way):
    # every frame at this quantizer (x264 -qp, NVENC -rc constqp), no bitrate target
    constant_qp: _int(0, 51) = None
    # ``bitrate`` as a constant bitrate: -b:v = -maxrate with a one-second VBV buffer (NVENC -rc cbr)
    constant_bitrate: Flag = None
    # run the host's hardware encoder for ``video_codec`` where one was detected working (h264_nvenc for
    # libx264), at ``hardware_preset`` (NVENC's preset names); otherwise the software encoder runs
    hardware: Flag = None
    hardware_preset: _choice(("slow", "medium", "fast", "hp", "hq", "ll", "llhq", "llhp")) = None
    # streaming
    stream: _list(Stream, 1, 20) = None
    playlist_name: FileName = None
    segment_duration: _float(0.5, 120) = None
    i_frames_only: Flag = None
    fmp4: Flag = None
    create_m3u8_playlist: Flag = None
    separate_audio: Flag = None
    single_folder: Flag = None
    incremental_tag: Token = None
    packager_version: _int(1, 99) = None
    # protection
    encryption: Encryption | None = None
    cenc_drm: CencDrm | None = None
    fps_drm: FpsDrm | None = None
    # images
    time: _float(0, 1) = None
    frame_number: _int(0, 10**9) = None
    interval: _float(0, 86400, above_lo=True) = None
    image_format: _choice(("png", "jpg")) = None
    sprite: Flag = None
    columns: _int(1, 100) = None
    # overlays
    subtitles: Subtitles | None = None
    # repack
    audio_copy: Flag = None
    video_copy: Flag = None
    subtitles_copy: Flag = None
    metadata_copy: Flag = None
    # metadata
    metadata_version: _t(str, lambda v: _as_choice_re(
        _number_text(v), r"[0-9]{1,2}(?:\.[0-9]{1,3}){0,2}", "a version like 4.1.5")) = None
    # speech_to_text
    transcript: Flag = None
    transcript_name: FileName = None
    json_: Flag = Field(None, alias="json")
    json_name: FileName = None
    srt: Flag = None
    srt_name: FileName = None
    vtt: Flag = None
    vtt_name: FileName = None
    mode: _choice(("speed", "balanced", "accuracy")) = None
    language: Language = None
    translate_languages: _list(LanguageCode, 1, 50) = None
    # vmaf
    vmaf_model: Token = None
    distorted: HttpUrl = None
    n_subsample: _int(1, 1000) = None
    shortest: Flag = None
    # 360
    keep_360_metadata: Flag = None
    inject_360_metadata: Inject360 | None = None

    @model_validator(mode="after")
    def _check_container(self) -> "Format":
        video_ok = CONTAINER_VIDEO_CODECS.get(self.output)
        if video_ok is not None and self.video_codec is not None and self.video_codec not in video_ok:
            raise _vidmill_error("video_codec", f"{self.video_codec} cannot go into a {self.output} output; "
                                                f"use {_choices(tuple(sorted(video_ok)))}")
        audio_ok = CONTAINER_AUDIO_CODECS.get(self.output)
        if audio_ok is not None and self.audio_codec is not None and self.audio_codec not in audio_ok:
            raise _vidmill_error("audio_codec", f"{self.audio_codec} cannot go into a {self.output} output; "
                                                f"use {_choices(tuple(sorted(audio_ok)))}")
        if self.audio_codec == "libopus" and self.output not in ("webm", "webm_dash"):
            raise _vidmill_error("audio_codec", "libopus is only allowed with webm outputs")
        return self


class Query(_Model):
    """The ``query`` object of start_encode2."""

    source: Annotated[str | None, BeforeValidator(lambda v: None if v is None else _as_url(v, SOURCE_SCHEMES))] = None
    stitch: Annotated[_list(StitchItem, 1, 100), BeforeValidator(
        lambda v: [{"url": i} if isinstance(i, str) else i for i in v] if isinstance(v, list) else v)] = None
    format: Annotated[list[Format], Field(min_length=1, max_length=50)]
    callback_url: HttpUrl = None
    use_subtask_callback: Flag = None
    refresh_playlist: Flag = None
    retry_on_error: Flag = None
    upscale: Flag = None
    encoder_version: _int(1, 2) = None

    @model_validator(mode="after")
    def _check_input(self) -> "Query":
        if self.source is None and self.stitch is None:
            raise _vidmill_error("source", "is required (or stitch, a list of inputs)")
        if self.source is not None and self.stitch is not None:
            raise _vidmill_error("stitch", "cannot be used together with source; give one of them")
        return self

"""File outputs without a picture to encode: ``mp3`` and ``flac`` (audio only) and ``repack`` (a transmux:
streams copied, only the container changes).

Audio outputs take the first audio stream (``audio_bitrate``/``audio_sample_rate``/``audio_channels_number``
with the seed's defaults; FLAC is lossless, so it has no bitrate). ``repack`` copies the first video and audio
streams and, with ``subtitles_copy``, the text subtitles (as MP4's mov_text); ``metadata_copy`` keeps the
source's tags (titles, dates: on purpose here, unlike encoded outputs). The container is MP4 when it can carry
the source's codecs, else Matroska.
"""

from __future__ import annotations

from pathlib import Path

from vidmill.engine.codecs import audio_adjustments, audio_settings, channel_args, num
from vidmill.errors import QueryError

AUDIO_FILE_OUTPUTS = {"mp3": ("libmp3lame", "mp3", "mp3"), "flac": ("flac", "flac", "flac")}
# What MP4 carries without re-encoding (FFmpeg's mov muxer); anything else is repacked into Matroska.
MP4_VIDEO = {"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg"}
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "opus", "flac", "alac", "mp2"}
TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
MKV_TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt"}  # Matroska's own text kinds: copied as they are


def _inputs(fmt, input_args: list[str], source: Path) -> list[str]:
    args = []
    if fmt.start_time:
        args += ["-ss", num(fmt.start_time)]
    if fmt.duration:
        args += ["-t", num(fmt.duration)]
    return [*args, *input_args, "-i", f"file:{source}"]


def plan_audio_file(fmt, *, source: Path, info, workdir: Path, ffmpeg: str, index: int, input_args: list[str],
                    duration: float | None):
    from vidmill.engine.plan import GLOBAL_ARGS, Notice, Plan, PlannedOutput, Step

    prefix = f"format[{index}]"
    if not info.has_audio:
        raise QueryError(f"{prefix}.output: the source has no audio stream for a {fmt.output} output",
                         field=f"{prefix}.output")
    encoder, muxer, ext = AUDIO_FILE_OUTPUTS[fmt.output]
    notices = []
    if fmt.audio_codec:
        notices.append(Notice("adjusted", f"{fmt.audio_codec} cannot go into a {fmt.output} output; encoded with "
                                          f"{encoder}", f"{prefix}.audio_codec", index))
    bitrate, rate, channels = audio_settings(fmt, encoder)
    notices += [Notice("adjusted", message, f"{prefix}.{key}", index)
                for message, key in audio_adjustments(fmt, encoder)]
    audio = ["-c:a", encoder, "-ar", str(rate), *channel_args(encoder, channels)]
    if fmt.output == "mp3":
        audio[2:2] = ["-b:a", f"{bitrate}k"]
    elif fmt.audio_bitrate:
        notices.append(Notice("adjusted", "FLAC is lossless: audio_bitrate is not used", f"{prefix}.audio_bitrate",
                              index))
    out = workdir / f"audio-{index}.{ext}"
    argv = [ffmpeg, "-y", *_inputs(fmt, input_args, source), "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-map_metadata", "-1", "-map_chapters", "-1", *audio, "-f", muxer, str(out)]
    assert argv[1:2] == list(GLOBAL_ARGS)
    return Plan(steps=[Step(argv, duration, "encode")], outputs=[PlannedOutput(index, 0, "file", [out], probe=out,
                                                                                 user_tag=fmt.tag)],
                notices=notices)


def _flag(value) -> bool:
    return True if value is None else bool(value)  # the copy flags default to 1


def plan_repack(fmt, *, source: Path, info, workdir: Path, ffmpeg: str, index: int, input_args: list[str],
                duration: float | None):
    from vidmill.engine.plan import Notice, Plan, PlannedOutput, Step

    prefix = f"format[{index}]"
    video = _flag(fmt.video_copy) and info.has_video
    audio = _flag(fmt.audio_copy) and info.has_audio
    if not video and not audio:
        raise QueryError(f"{prefix}.video_copy: with these copy flags the source leaves nothing to repack",
                         field=f"{prefix}.video_copy")
    notices = []
    maps: list[str] = []
    if video:
        maps += ["-map", "0:v:0"]
    if audio:
        maps += ["-map", "0:a:0"]
    mp4 = (not video or info.video_codec in MP4_VIDEO) and (not audio or info.audio_codec in MP4_AUDIO)
    subs: list[str] = []
    if _flag(fmt.subtitles_copy) and info.subtitle_codecs:
        text = [i for i, c in enumerate(info.subtitle_codecs) if c in TEXT_SUBTITLES]
        if len(text) < len(info.subtitle_codecs):
            notices.append(Notice("adjusted", "picture-based subtitles cannot be repacked; left out",
                                  f"{prefix}.subtitles_copy", index))
        for k, i in enumerate(text):
            # MP4 carries text as mov_text; Matroska copies its own kinds and takes MP4's mov_text as SubRip
            codec = "mov_text" if mp4 else ("copy" if info.subtitle_codecs[i] in MKV_TEXT_SUBTITLES else "srt")
            subs += ["-map", f"0:s:{i}", f"-c:s:{k}", codec]
    meta = ["-map_metadata", "0"] if _flag(fmt.metadata_copy) else ["-map_metadata", "-1", "-map_chapters", "-1"]
    out = workdir / f"video-{index}.{'mp4' if mp4 else 'mkv'}"
    mux = ["-movflags", "+faststart", "-f", "mp4"] if mp4 else ["-f", "matroska"]
    tag = ["-tag:v", "hvc1"] if video and mp4 and info.video_codec == "hevc" else []
    argv = [ffmpeg, "-y", *_inputs(fmt, input_args, source), *maps, *subs, *meta, "-c:v", "copy", "-c:a", "copy",
            *tag, *mux, str(out)]
    return Plan(steps=[Step(argv, duration, "repack")], outputs=[PlannedOutput(index, 0, "file", [out], probe=out,
                                                                                 user_tag=fmt.tag)],
                notices=notices)

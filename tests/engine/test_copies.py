"""mp3, flac and repack outputs made by the real FFmpeg and read back with PyAV."""

from __future__ import annotations

import av
import pytest

from tests.engine.test_streaming import make
from vidmill.errors import QueryError


def test_mp3_and_flac_are_audio_only(tmp_path, media):
    plan, [mp3], _ = make(tmp_path / "a", media, {"output": "mp3", "duration": 2, "audio_bitrate": 96})
    assert mp3.files[0].suffix == ".mp3"
    assert (mp3.facts["audio_codec"], mp3.facts["audio_channels"], "video_codec" in mp3.facts) == ("mp3", 2, False)
    assert 90_000 <= mp3.facts["audio_bit_rate"] <= 100_000
    plan, [flac], _ = make(tmp_path / "b", media, {"output": "flac", "duration": 2, "audio_sample_rate": 48000,
                                                   "audio_codec": "aac"})
    assert (flac.facts["audio_codec"], flac.facts["audio_sample_rate"]) == ("flac", 48000)
    assert [n.field for n in plan.notices] == ["format[0].audio_codec"]  # aac cannot go into a flac file
    assert flac.facts["duration"] == pytest.approx(2.0, abs=0.05)


def test_audio_output_needs_audio(tmp_path, media):
    with pytest.raises(QueryError) as err:
        make(tmp_path, media, {"output": "mp3"}, source="city_cc0_720x405_mpeg2.mpg")
    assert err.value.field == "format[0].output"


def test_repack_copies_streams_bit_for_bit(tmp_path, media):
    _, [out], _ = make(tmp_path, media, {"output": "repack"})
    src = media / "bbb_720p_5s_aac51.mp4"
    with av.open(str(src)) as a, av.open(str(out.files[0])) as b:
        assert [s.codec_context.name for s in b.streams] == ["h264", "aac"]
        assert b.streams.audio[0].codec_context.channels == 6  # copied, not downmixed
        original = [bytes(p) for p in a.demux(a.streams.video[0]) if p.size]
        copied = [bytes(p) for p in b.demux(b.streams.video[0]) if p.size]
        assert copied == original


def test_repack_drops_what_the_flags_turn_off_and_picks_the_container(tmp_path, media):
    _, [out], _ = make(tmp_path / "a", media, {"output": "repack", "audio_copy": 0, "metadata_copy": 0})
    with av.open(str(out.files[0])) as c:
        assert [s.type for s in c.streams] == ["video"]
    _, [vp8], _ = make(tmp_path / "b", media, {"output": "repack", "duration": 2}, source="screencast_vp8.webm")
    assert vp8.files[0].suffix == ".mkv" and vp8.facts["video_codec"] == "vp8"  # MP4 cannot carry VP8


def _audio(path) -> tuple[str, int, int, str]:
    with av.open(str(path)) as c:
        cc = c.streams.audio[0].codec_context
        return cc.name, cc.sample_rate, cc.channels, cc.layout.name


def test_audio_settings_an_encoder_cannot_take_are_adjusted_with_a_warning(tmp_path, media):
    """The query allows 192 kHz and 8 channels; LAME takes 48 kHz and 2 channels, AAC 96 kHz. Before, FFmpeg
    failed the job with the encoder's one word ("stereo", "8000", "7350")."""
    plan, [mp3], _ = make(tmp_path / "a", media, {"output": "mp3", "duration": 1, "audio_sample_rate": 96000,
                                                  "audio_channels_number": 6})
    assert _audio(mp3.files[0])[1:3] == (48000, 2) and _audio(mp3.files[0])[0].startswith("mp3")
    assert sorted((n.field, n.message) for n in plan.notices) == [
        ("format[0].audio_channels_number", "libmp3lame carries at most 2 channels; downmixed to stereo"),
        ("format[0].audio_sample_rate", "libmp3lame cannot encode at 96000 Hz; encoded at 48000 Hz")]
    plan, described, _ = make(tmp_path / "b", media, {"output": "hls_audio", "duration": 1,
                                                      "audio_sample_rate": 192000})
    segment = next(d for d in described if d.kind == "audio").files[1]
    assert _audio(segment)[:2] == ("aac", 96000)
    assert [(n.field, n.message) for n in plan.notices] == [
        ("format[0].audio_sample_rate", "aac cannot encode at 192000 Hz; encoded at 96000 Hz")]


@pytest.mark.parametrize("fmt", [
    pytest.param({"output": "webm", "size": "320x180"}, id="opus"),
    pytest.param({"output": "flac"}, id="flac"),
])
def test_three_channels_are_left_right_centre(tmp_path, media, fmt):
    """FFmpeg's default three-channel layout is 2.1, which libopus refuses ("Invalid channel layout 2.1 for
    specified mapping family 1") and FLAC mislabels: three channels are encoded as 3.0."""
    plan, described, _ = make(tmp_path, media, {**fmt, "duration": 1, "audio_channels_number": 3})
    name, _, channels, layout = _audio(described[0].files[0])
    assert (channels, layout) == (3, "3.0") and name in ("opus", "flac")


SRT = "1\n00:00:00,200 --> 00:00:01,500\nHello from the source\n\n2\n00:00:01,600 --> 00:00:02,800\nSecond line\n"


def _with_subtitles(tmp_path, media, name: str, codecs: list[str]):
    """A 3 s copy of the 5.1 clip with a text subtitle track, muxed with the given audio and subtitle codecs."""
    import subprocess

    from vidmill.engine.ffmpeg import ffmpeg_exe

    srt = tmp_path / "subs.srt"
    srt.write_text(SRT)
    out = tmp_path / name
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-t", "3", "-i", str(media / "bbb_720p_5s_aac51.mp4"),
                    "-i", str(srt), "-map", "0:v", "-map", "0:a", "-map", "1:s", "-c:v", "copy", *codecs, str(out)],
                   check=True)
    return out


def _subtitle_texts(path) -> tuple[str, list[str]]:
    with av.open(str(path)) as c:
        stream = c.streams.subtitles[0]
        texts = []
        for packet in c.demux(stream):
            for item in packet.decode():  # a subtitle, or a set of them (PyAV versions differ)
                for sub in (item if hasattr(item, "__iter__") else [item]):
                    value = getattr(sub, "ass", None) or getattr(sub, "text", None) or b""
                    texts.append(value.decode(errors="replace") if isinstance(value, bytes) else str(value))
        return stream.codec_context.name, texts


@pytest.mark.parametrize("name, codecs, container, subtitle", [
    # PCM audio cannot go into MP4, so the repack is Matroska: mov_text becomes SubRip (a copy failed the job)
    pytest.param("movtext.mov", ["-c:a", "pcm_s16le", "-c:s", "mov_text"], ".mkv", ("subrip", "srt"),
                 id="mov_text-to-mkv"),
    pytest.param("subrip.mkv", ["-c:a", "copy", "-c:s", "srt"], ".mp4", ("mov_text",), id="subrip-to-mp4"),
    pytest.param("ass.mkv", ["-c:a", "pcm_s16le", "-c:s", "ass"], ".mkv", ("ass", "ssa"), id="ass-copied-in-mkv"),
])
def test_repack_keeps_text_subtitles_in_the_container_it_picks(tmp_path, media, name, codecs, container, subtitle):
    source = _with_subtitles(tmp_path, media, name, codecs)
    _, [out], _ = make(tmp_path, media, {"output": "repack"}, source=str(source))
    assert out.files[0].suffix == container
    codec, texts = _subtitle_texts(out.files[0])
    assert codec in subtitle  # PyAV names decoders: srt for SubRip, ssa for ASS
    joined = " ".join(texts)
    assert "Hello from the source" in joined and "Second line" in joined, texts

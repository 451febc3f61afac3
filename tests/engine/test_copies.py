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

"""probe() on the real test media: ffprobe's JSON shape and types, MediaInfo, the Qencode output meta."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from fractions import Fraction

import pytest

from vidmill.engine.ffmpeg import ffmpeg_exe
from vidmill.api.qencode_render import render_meta
from vidmill.engine.probe import MediaInfo, media_info, output_facts, probe
from vidmill.errors import ProbeError

pytestmark = pytest.mark.integration


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def video(j: dict) -> dict:
    return next(s for s in j["streams"] if s["codec_type"] == "video")


def audio(j: dict) -> dict:
    return next(s for s in j["streams"] if s["codec_type"] == "audio")


# file, video codec, width, height, fps, pix_fmt, audio codec, channels, sample rate
MEDIA = [
    pytest.param("bbb_720p_5s_aac51.mp4", "h264", 1280, 720, 25.0, "yuv420p", "aac", 6, 48000, id="bbb-aac51"),
    pytest.param("bbb_trailer_720p_55s_mp3.mp4", "h264", 1280, 720, 24.0, "yuv420p", "mp3", 2, 44100,
                 id="trailer-mp3"),
    pytest.param("city_cc0_720x405_mpeg2.mpg", "mpeg2video", 720, 405, 25.0, "yuv420p", None, None, None,
                 id="city-mpeg2"),
    pytest.param("carphone_qcif_sar.mp4", "h264", 176, 144, 30000 / 1001, "yuv420p", None, None, None,
                 id="carphone-sar"),
    pytest.param("anim_256_mjpeg.mov", "mjpeg", 256, 256, 30.0, "yuvj422p", None, None, None, id="mjpeg"),
    pytest.param("screencast_vp8.webm", "vp8", 1024, 768, 15.0, "yuv420p", None, None, None, id="vp8"),
    pytest.param("mpeg4part2_mp3.avi", "mpeg4", 480, 270, 30.0, "yuv420p", "mp3", 2, 48000, id="avi"),
    pytest.param("box_vfr_brokenfirst_mp3.mp4", "h264", 640, 480, None, "yuv420p", "mp3", 1, 44100,
                 id="vfr-mono"),
]


@pytest.mark.parametrize("name,vcodec,width,height,fps,pix_fmt,acodec,channels,rate", MEDIA)
def test_probe_media(media, name, vcodec, width, height, fps, pix_fmt, acodec, channels, rate):
    j = probe(media / name)
    json.dumps(j)  # plain JSON all through
    v = video(j)
    assert (v["codec_name"], v["width"], v["height"], v["pix_fmt"]) == (vcodec, width, height, pix_fmt)
    info = media_info(j)
    assert isinstance(info, MediaInfo)
    assert (info.video_codec, info.width, info.height, info.rotation) == (vcodec, width, height, 0)
    assert info.has_video and info.pix_fmt == pix_fmt
    if fps is None:  # variable frame rate: the average, near the nominal 29.97
        assert 29.9 < info.fps < 30.0
    else:
        assert info.fps == pytest.approx(fps)
    assert info.has_audio is (acodec is not None)
    if acodec:
        a = audio(j)
        assert (a["codec_name"], a["channels"], a["sample_rate"]) == (acodec, channels, str(rate))
        assert (info.audio_codec, info.audio_channels, info.audio_sample_rate) == (acodec, channels, rate)
    assert info.size_bytes == (media / name).stat().st_size
    assert info.duration and info.duration > 1


def test_ffprobe_names_and_string_types(media):
    path = media / "bbb_720p_5s_aac51.mp4"
    j = probe(path)
    fmt = j["format"]
    assert fmt["filename"] == str(path)
    assert fmt["nb_streams"] == 2
    assert fmt["format_name"] == "mov,mp4,m4a,3gp,3g2,mj2"
    assert fmt["format_long_name"] == "QuickTime / MOV"
    assert fmt["start_time"] == "0.000000"
    assert fmt["duration"] == "5.312000"
    assert fmt["size"] == "1055736"
    assert fmt["bit_rate"].isdigit()
    assert fmt["tags"]["major_brand"] == "isom"
    v, a = j["streams"]
    assert v["index"] == 0 and a["index"] == 1
    assert v["codec_long_name"] == "H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10"
    assert (v["profile"], v["codec_tag_string"], v["codec_tag"]) == ("Main", "avc1", "0x31637661")
    assert (v["sample_aspect_ratio"], v["display_aspect_ratio"]) == ("1:1", "16:9")
    assert (v["r_frame_rate"], v["avg_frame_rate"], v["time_base"]) == ("25/1", "25/1", "1/12800")
    assert (v["start_time"], v["duration"], v["nb_frames"]) == ("0.000000", "5.280000", "132")
    assert v["bit_rate"] == "1205959"
    assert v["field_order"] == "progressive"
    assert v["level"] == 31
    assert v["disposition"]["default"] == 1
    assert v["tags"]["language"] == "und"
    assert (a["sample_fmt"], a["sample_rate"], a["channels"], a["channel_layout"]) == ("fltp", "48000", 6, "5.1")
    assert (a["profile"], a["bits_per_sample"], a["r_frame_rate"]) == ("LC", 0, "0/0")
    assert "side_data_list" not in v


def test_probe_is_fast(media):
    for path in sorted(media.glob("*.*")):
        if path.suffix in (".md", ".mkv"):
            continue
        start = time.perf_counter()
        probe(path)
        assert time.perf_counter() - start < 1.0, path.name  # about 5-35 ms each on the 2-core box


def test_mpeg_ps_keys_ffprobe_leaves_out_or_formats(media):
    v = video(probe(media / "city_cc0_720x405_mpeg2.mpg"))
    assert v["codec_tag_string"] == "[0][0][0][0]" and v["codec_tag"] == "0x0000"
    assert v["id"] == "0x1e0"
    assert v["start_time"] == "0.540000" and v["start_pts"] == 48600
    assert v["color_range"] == "tv"
    assert "nb_frames" not in v and "bit_rate" not in v  # unknown: absent, never 0 or "N/A"


def test_mjpeg_colour_and_range(media):
    v = video(probe(media / "anim_256_mjpeg.mov"))
    assert (v["pix_fmt"], v["color_range"], v["color_space"]) == ("yuvj422p", "pc", "bt470bg")
    assert "color_transfer" not in v and "field_order" not in v


def test_sar_and_dar(media):
    j = probe(media / "carphone_qcif_sar.mp4")
    v = video(j)
    assert (v["sample_aspect_ratio"], v["display_aspect_ratio"]) == ("128:117", "1408:1053")
    info = media_info(j)
    assert info.sar == Fraction(128, 117)
    assert info.dar == Fraction(176 * 128, 144 * 117) == Fraction(1408, 1053)
    assert (info.display_width, info.display_height) == (193, 144)


def test_webm_dar_computed_from_sar(media):
    v = video(probe(media / "screencast_vp8.webm"))
    assert (v["sample_aspect_ratio"], v["display_aspect_ratio"]) == ("1:1", "4:3")
    assert "duration" not in v  # Matroska streams carry none; the format does
    assert media_info(probe(media / "screencast_vp8.webm")).duration == pytest.approx(37.133, abs=0.01)


def test_vfr_rates_and_stream_order(media):
    j = probe(media / "box_vfr_brokenfirst_mp3.mp4")
    assert [s["codec_type"] for s in j["streams"]] == ["audio", "video"]
    v = video(j)
    assert v["r_frame_rate"] == "30000/1001"
    assert v["avg_frame_rate"] != v["r_frame_rate"]
    assert audio(j)["channel_layout"] == "mono"
    assert audio(j)["start_time"] == "0.067324"


@pytest.mark.parametrize("degrees,rotation", [pytest.param(90, 90, id="ccw90"), pytest.param(-90, 270, id="cw90"),
                                              pytest.param(180, 180, id="180")])
def test_rotation_from_display_matrix(media, tmp_path, degrees, rotation):
    out = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", str(degrees), "-i", str(media / "bbb_720p_5s_aac51.mp4"), "-t", "0.5",
           "-c", "copy", str(out))
    j = probe(out)
    v = video(j)
    (sd,) = v["side_data_list"]
    assert sd["side_data_type"] == "Display Matrix"
    assert sd["rotation"] % 360 == degrees % 360 and isinstance(sd["rotation"], int)
    assert sd["displaymatrix"].startswith("\n00000000: ")
    assert (v["width"], v["height"]) == (1280, 720)  # stored size, as ffprobe
    info = media_info(j)
    assert info.rotation == rotation
    expect = (720, 1280) if rotation in (90, 270) else (1280, 720)
    assert (info.display_width, info.display_height) == expect
    meta = render_meta(output_facts(j))
    assert (meta["width"], meta["height"]) == (1280, 720)
    assert (meta["resolution_width"], meta["resolution_height"], meta["resolution"]) == (*expect, 720)


def test_rotate_tag_of_old_muxers_is_clockwise():
    j = {"format": {}, "streams": [{"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1920,
                                    "height": 1080, "tags": {"rotate": "90"}}]}
    info = media_info(j)
    assert info.rotation == 270  # "rotate=90" turns clockwise: the display matrix says -90
    assert (info.display_width, info.display_height) == (1080, 1920)


def test_interlaced_flag(media, tmp_path):
    out = tmp_path / "interlaced.mp4"
    ffmpeg("-i", str(media / "carphone_qcif_sar.mp4"), "-t", "0.5", "-vf", "tinterlace=interleave_top",
           "-flags", "+ildct+ilme", "-c:v", "libx264", "-preset", "ultrafast", str(out))
    j = probe(out)
    assert video(j)["field_order"] == "tt"
    info = media_info(j)
    assert info.interlaced and info.field_order == "tt"
    assert not media_info(probe(media / "carphone_qcif_sar.mp4")).interlaced


def test_corrupt_truncated_mkv_is_refused(media):
    with pytest.raises(ProbeError, match="End of file") as err:
        probe(media / "corrupt_truncated.mkv")
    assert "corrupt_truncated.mkv" in err.value.message


@pytest.mark.parametrize("name,content,match", [
    pytest.param("notes.txt", b"hello\nthis is not a video\n", "Invalid data found", id="text"),
    pytest.param("fake.mp4", b"hello\nthis is not a video\n", "Invalid data found", id="text-as-mp4"),
    pytest.param("empty.mp4", b"", "Invalid data found", id="empty"),
    pytest.param("subs.srt", b"1\n00:00:00,000 --> 00:00:01,000\nhello\n", "not in a container vidmill reads",
                 id="subtitles-only"),
])
def test_not_media_is_refused(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ProbeError, match=match):
        probe(path)


def test_playlists_are_refused_even_when_their_segments_exist(media, tmp_path):
    # a playlist makes FFmpeg open other files (or URLs): a source must be one self-contained file
    ffmpeg("-i", str(media / "carphone_qcif_sar.mp4"), "-t", "0.5", "-c", "copy", str(tmp_path / "seg.ts"))
    path = tmp_path / "list.m3u8"
    path.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.5,\nseg.ts\n#EXT-X-ENDLIST\n")
    with pytest.raises(ProbeError, match="not in a container vidmill reads"):
        probe(path)
    concat = tmp_path / "list.ffconcat"
    concat.write_text("ffconcat version 1.0\nfile seg.ts\n")
    with pytest.raises(ProbeError, match="not in a container vidmill reads"):
        probe(concat)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ProbeError, match="no such file"):
        probe(tmp_path / "nope.mp4")


def test_name_with_colon_and_dash(media, tmp_path):
    path = tmp_path / "-odd: name.mp4"
    path.write_bytes((media / "carphone_qcif_sar.mp4").read_bytes())
    assert media_info(probe(path)).width == 176


def test_output_meta_of_an_encoded_file(media, tmp_path):
    out = tmp_path / "144p.mp4"
    ffmpeg("-i", str(media / "bbb_720p_5s_aac51.mp4"), "-t", "1", "-vf", "scale=256:144", "-r", "30000/1001",
           "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "80k", "-c:a", "aac", "-ac", "2", "-b:a", "64k",
           str(out))
    meta = render_meta(output_facts(probe(out)))
    assert {k: meta[k] for k in ("width", "height", "resolution_width", "resolution_height", "resolution",
                                 "framerate", "codec", "dar", "sar", "pix_format", "audio_codec",
                                 "audio_channels", "audio_sample_rate")} == {
        "width": 256, "height": 144, "resolution_width": 256, "resolution_height": 144, "resolution": 144,
        "framerate": "30000/1001", "codec": "h264", "dar": "16:9", "sar": "1:1", "pix_format": "yuv420p",
        "audio_codec": "aac", "audio_channels": 2, "audio_sample_rate": 48000}
    assert meta["bitrate"].isdigit() and 20_000 < int(meta["bitrate"]) < 400_000
    assert meta["audio_bitrate"].isdigit()
    assert float(meta["duration"]) == pytest.approx(1.0, abs=0.1)
    json.dumps(meta)


def test_output_meta_of_an_audio_only_file(media, tmp_path):
    out = tmp_path / "audio.m4a"
    ffmpeg("-i", str(media / "bbb_720p_5s_aac51.mp4"), "-t", "1", "-vn", "-c:a", "aac", "-ac", "2", str(out))
    meta = render_meta(output_facts(probe(out)))
    assert (meta["codec"], meta["channels"], meta["sample_rate"], meta["index"]) == ("aac", 2, 48000, 0)
    assert isinstance(meta["bit_rate"], int) and meta["program_ids"] == []
    assert "width" not in meta


def test_probe_accepts_str_paths(media):
    fmt = probe(str(media / "mpeg4part2_mp3.avi"))["format"]
    assert (fmt["format_name"], fmt["filename"]) == ("avi", str(media / "mpeg4part2_mp3.avi"))


def test_probe_opens_nothing_an_hls_playlist_names(tmp_path):
    secret = tmp_path / "secret.ts"
    os.mkfifo(secret)  # opening a FIFO for reading blocks until a writer comes: a non-blocking writer sees it
    path = tmp_path / "list.m3u8"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.5,\n{secret}\n#EXT-X-ENDLIST\n")
    opened, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            try:
                os.close(os.open(secret, os.O_WRONLY | os.O_NONBLOCK))
                opened.append(1)
            except OSError:  # ENXIO: nobody is reading it
                time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with pytest.raises(ProbeError):
            probe(path)
    finally:
        stop.set()
        watcher.join(5)
    assert opened == []

"""api.qencode_render: vidmill's neutral notices, facts and outputs rendered in Qencode's status shapes."""

from __future__ import annotations

from vidmill.api.qencode_render import render_meta, render_status, render_warning
from vidmill.config import Settings
from vidmill.core.tasks import JobView, TaskView

SETTINGS = Settings(public_url="http://vm.test")


def test_notices_become_qencode_warnings_with_their_tag():
    kinds = {0: "mp4", 1: "mp3"}
    assert render_warning({"code": "skipped", "message": "too large", "field": None, "format": 0, "stream": 2},
                          kinds) == {"message": "Output skipped", "details": "too large", "tag": "video-0-2"}
    assert render_warning({"code": "adjusted", "message": "aac instead", "field": "format[1].audio_codec",
                           "format": 1, "stream": 0}, kinds) == {
        "message": "aac instead", "details": "format[1].audio_codec", "tag": "audio-1-0"}
    assert render_warning({"code": "soft_fail", "message": "FFmpeg failed: x", "format": 0}, kinds)["message"] == \
        "Errors Ignored by 'allow_soft_fail'"
    qencode_shaped = {"message": "Callback delivery error", "details": "HTTP 500", "tag": None}
    assert render_warning(qencode_shaped, kinds) == qencode_shaped


def test_meta_from_facts():
    facts = {"width": 352, "height": 288, "display_width": 384, "display_height": 288, "frame_rate": "25/1",
             "video_codec": "h264", "video_bit_rate": 90000, "dar": "4:3", "sar": "12:11", "pix_fmt": "yuv420p",
             "duration": 2.0, "audio_codec": "aac", "audio_bit_rate": 64000, "audio_channels": 2,
             "audio_sample_rate": 44100}
    assert render_meta(facts) == {
        "width": 352, "height": 288, "resolution_width": 384, "resolution_height": 288, "resolution": 288,
        "framerate": "25/1", "codec": "h264", "bitrate": "90000", "dar": "4:3", "sar": "12:11",
        "pix_format": "yuv420p", "duration": "2.000000", "audio_codec": "aac", "audio_bitrate": "64000",
        "audio_channels": 2, "audio_sample_rate": 44100}
    assert render_meta({"audio_codec": "mp3", "audio_channels": 1, "duration": 3})["codec"] == "mp3"


def test_streaming_output_item_points_at_the_master_and_lists_each_stream():
    top = {"width": 1280, "height": 720, "display_width": 1280, "display_height": 720, "video_codec": "h264"}
    result = {"main": "ID/playlist.m3u8", "files": [{"path": "ID/video_1/chunklist.m3u8", "size": 1}],
              "facts": top, "size": 3_000_000, "duration": 10.0, "bitrate": 2400,
              "outputs": [{"stream": 0, "kind": "video", "user_tag": "720p", "facts": top,
                           "main": "ID/video_1/chunklist.m3u8"},
                          {"stream": 1, "kind": "video", "user_tag": "360p", "facts": {**top, "height": 360},
                           "main": "ID/video_2/chunklist.m3u8"},
                          {"stream": 0, "kind": "audio", "user_tag": None, "facts": {"audio_codec": "aac"},
                           "main": "ID/audio/chunklist.m3u8"}]}
    view = TaskView(1, "t" * 32, 1, "qencode", "completed", 100.0, 0, None, [], None, None, 10.0, {},
                    [JobView(1, 0, "advanced_hls", {"output": "advanced_hls", "tag": "ladder"}, "completed", 100.0,
                             result, None)])
    [item] = render_status(view, SETTINGS)["videos"]
    assert item["url"] == "http://vm.test/files/ID/playlist.m3u8" and item["tag"] == "video-0-0"
    assert item["user_tag"] == "ladder" and item["meta"]["height"] == 720
    assert [(s["tag"], s["user_tag"]) for s in item["streams"]] == [
        ("video-0-0", "720p"), ("video-0-1", "360p"), ("audio-0-0", None)]
    assert item["streams"][1]["url"] == "http://vm.test/files/ID/video_2/chunklist.m3u8"

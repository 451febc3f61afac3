"""Qencode's own Python SDK (qencode3 1.0.1), unchanged, against a real vidmill server on real media."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from qencode3.client import Client  # Client() is shadowed by this submodule after one call
from qencode3.custom_params import CustomTranscodingParams, Format

from tests.integration.helpers import download, streams, wait_task
from vidmill.notify.callbacks import verify

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(server):
    c = Client(server.api_key, api_url=server.url + "/")
    assert not c.error, c.message
    return c


def test_bad_api_key_is_refused_with_qencode_codes(server):
    c = Client("nosuchkey0123456789", api_url=server.url + "/")
    assert c.error == 3
    c = Client("bad key!", api_url=server.url + "/")
    assert c.error == 2


def test_dict_query_mp4_completes_with_probed_output(client, origin, tmp_path):
    task = client.create_task()
    assert not task.error and len(task.task_token) == 32
    assert task.upload_url.endswith("/v1/upload_file")
    task.custom_start({"query": {
        "source": f"{origin.url}/bbb_720p_5s_aac51.mp4",
        "format": [{"output": "mp4", "size": "320x240", "video_codec": "libx264", "duration": 2, "tag": "small"}],
    }}, payload="order-17")
    assert not task.error, task.message
    assert task.status_url.endswith("/v1/status")
    status = wait_task(task)
    assert status["status"] == "completed" and status["error"] == 0, status
    assert status["percent"] == 100
    assert status["payload"] == "order-17"
    # what polling saw only ever moves forward (a 2 s clip may encode between two polls: "encoding" can be missed)
    order = ["queued", "downloading", "encoding", "saving", "completed"]
    seen = [order.index(s) for s, _ in status["_seen"]]
    assert seen == sorted(seen) and seen[-1] == order.index("completed"), status["_seen"]
    [video] = status["videos"]
    assert video["tag"] == "video-0-0" and video["user_tag"] == "small"
    assert video["meta"]["width"] == 320 and video["meta"]["height"] == 240
    assert video["meta"]["codec"] == "h264"
    out = tmp_path / "out.mp4"
    download(video["url"], out)
    info = streams(out)
    assert info["video"]["codec"] == "h264"
    assert (info["video"]["width"], info["video"]["height"]) == (320, 240)
    assert info["audio"]["codec"] == "aac" and info["audio"]["channels"] == 2
    assert 1.8 <= info["duration"] <= 2.3
    assert float(video["size"]) > 0 and video["bitrate"] > 0


def test_json_string_query_webm(client, origin, tmp_path):
    task = client.create_task()
    query = json.dumps({"query": {
        "source": f"{origin.url}/screencast_vp8.webm",
        "format": [{"output": "webm", "resolution": 240, "duration": 1.5, "video_codec": "libvpx-vp9"}],
    }}, separators=(", ", ": "))
    task.custom_start(query)
    assert not task.error, task.message
    status = wait_task(task)
    assert status["status"] == "completed", status
    out = tmp_path / "out.webm"
    download(status["videos"][0]["url"], out)
    info = streams(out)
    assert info["video"]["codec"] == "vp9"
    assert info["video"]["height"] == 240 and info["video"]["width"] == 320  # 1024x768 → 4:3 at 240


def test_custom_transcoding_params_several_formats(client, origin, tmp_path):
    params = CustomTranscodingParams()
    params.source = f"{origin.url}/bbb_720p_5s_aac51.mp4"
    f1 = Format()
    f1.output = "mp4"
    f1.video_codec = "libx265"
    f1.size = "480x270"
    f1.duration = 1
    f2 = Format()
    f2.output = "mp4"
    f2.width = 256
    f2.duration = 1
    params.format = [f1, f2]
    task = client.create_task()
    task.custom_start(params)
    assert not task.error, task.message
    status = wait_task(task)
    assert status["status"] == "completed", status
    assert [v["tag"] for v in status["videos"]] == ["video-0-0", "video-1-0"]
    out1, out2 = tmp_path / "a.mp4", tmp_path / "b.mp4"
    download(status["videos"][0]["url"], out1)
    download(status["videos"][1]["url"], out2)
    a, b = streams(out1), streams(out2)
    assert a["video"]["codec"] == "hevc" and (a["video"]["width"], a["video"]["height"]) == (480, 270)
    assert b["video"]["codec"] == "h264" and (b["video"]["width"], b["video"]["height"]) == (256, 144)


def test_get_metadata_returns_ffprobe_json(client, origin):
    data = client.get_metadata(f"{origin.url}/bbb_720p_5s_aac51.mp4")
    meta = json.loads(data)
    assert set(meta) >= {"format", "streams"}
    video = next(s for s in meta["streams"] if s["codec_type"] == "video")
    audio = next(s for s in meta["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1280, 720)
    assert audio["channels"] == 6
    assert float(meta["format"]["duration"]) == pytest.approx(5.3, abs=0.2)


def test_non_video_source_ends_in_error_with_description(client, origin):
    task = client.create_task()
    task.custom_start({"query": {"source": f"{origin.url}/notes.txt", "format": [{"output": "mp4"}]}})
    assert not task.error, task.message
    status = wait_task(task)
    assert status["status"] == "error" and status["error"] == 1
    assert status["error_description"]
    assert "media" in status["error_description"].lower()


def test_missing_source_file_ends_in_error_naming_http_status(client, origin):
    task = client.create_task()
    task.custom_start({"query": {"source": f"{origin.url}/nope.mp4", "format": [{"output": "mp4"}]}})
    status = wait_task(task)
    assert status["status"] == "error" and "404" in status["error_description"]


def test_callbacks_queued_and_saved_signed(client, origin, receiver, server):
    task = client.create_task()
    task.custom_start({"query": {
        "source": f"{origin.url}/carphone_qcif_sar.mp4", "callback_url": receiver.url,
        "format": [{"output": "mp4", "duration": 1}],
    }}, payload='{"id": 5}')
    status = wait_task(task)
    assert status["status"] == "completed"
    import time

    for _ in range(50):
        if "saved" in receiver.events(task.task_token):
            break
        time.sleep(0.1)
    assert receiver.events(task.task_token) == ["queued", "saved"]
    secret = _project_secret(server)
    for call in [c for c in receiver.calls if c.form.get("task_token") == task.task_token]:
        assert call.form["callback_type"] == "task"
        assert call.form["payload"] == '{"id": 5}'
        body = json.loads(call.form["status"])
        assert set(body) >= {"status", "percent", "error", "videos", "status_url"}
        headers = {k.lower(): v for k, v in call.headers.items()}
        assert headers["content-type"].startswith("application/x-www-form-urlencoded")
        assert verify(secret, call.body, int(headers["x-vidmill-timestamp"]), headers["x-vidmill-signature"])
    saved = json.loads([c for c in receiver.calls if c.form.get("event") == "saved"
                        and c.form["task_token"] == task.task_token][0].form["status"])
    assert saved["status"] == "completed" and saved["videos"][0]["url"]


def test_error_callback_carries_code_and_message(client, origin, receiver):
    task = client.create_task()
    task.custom_start({"query": {"source": f"{origin.url}/notes.txt", "callback_url": receiver.url,
                                 "format": [{"output": "mp4"}]}})
    wait_task(task)
    import time

    for _ in range(50):
        if "saved" in receiver.events(task.task_token):
            break
        time.sleep(0.1)
    assert receiver.events(task.task_token) == ["queued", "error", "saved"]
    err = [c for c in receiver.calls if c.form.get("task_token") == task.task_token and c.form["event"] == "error"][0]
    assert err.form["error_code"] and err.form["error_message"]


def test_receiver_down_adds_warning_and_task_completes(client, origin):
    task = client.create_task()
    task.custom_start({"query": {"source": f"{origin.url}/carphone_qcif_sar.mp4",
                                 "callback_url": "http://127.0.0.1:9/never",
                                 "format": [{"output": "mp4", "duration": 1}]}})
    status = wait_task(task)
    assert status["status"] == "completed"
    import time

    for _ in range(100):
        status = task.status()
        if any(w["message"] == "Callback delivery error" for w in status["warnings"]):
            break
        time.sleep(0.1)
    assert any(w["message"] == "Callback delivery error" for w in status["warnings"]), status["warnings"]
    assert status["status"] == "completed" and status["error"] == 0


def test_start_encode_with_stored_profiles(client, origin, server, tmp_path):
    formats = tmp_path / "p.json"
    formats.write_text(json.dumps([{"output": "mp4", "size": "160x120", "duration": 1}]))
    out = subprocess.run([sys.executable, "-m", "vidmill.cli", "profiles", "add", "--name", "tiny",
                          "--file", str(formats)], env=server.env, capture_output=True, text=True, check=True)
    uid = json.loads(out.stdout)["profile"]
    task = client.create_task()
    task.start(uid, f"{origin.url}/carphone_qcif_sar.mp4")
    assert not task.error, task.message
    status = wait_task(task)
    assert status["status"] == "completed"
    assert status["videos"][0]["meta"]["width"] == 160
    bad = client.create_task()
    bad.start("nosuchprofile", f"{origin.url}/carphone_qcif_sar.mp4")
    assert bad.error == 12


def _project_secret(server) -> str:
    out = subprocess.run([sys.executable, "-m", "vidmill.cli", "projects", "list"], env=server.env,
                         capture_output=True, text=True, check=True)
    return next(p for p in json.loads(out.stdout) if p["name"] == "default")["callback_secret"]


def test_percent_moves_while_encoding(client, origin):
    task = client.create_task()
    task.custom_start({"query": {"source": f"{origin.url}/bbb_trailer_720p_55s_mp3.mp4",
                                 "format": [{"output": "mp4", "size": "640x360", "duration": 20}]}})
    status = wait_task(task, interval=0.1)
    assert status["status"] == "completed"
    encoding = [p for s, p in status["_seen"] if s == "encoding"]
    assert len(set(encoding)) >= 2, status["_seen"]
    assert encoding == sorted(encoding)  # never goes backwards
    assert all(0 <= p < 100 for p in encoding)
    order = [s for s, _ in status["_seen"]]
    assert order.index("encoding") < order.index("completed")


def test_advanced_hls_master_playlist_url_is_in_videos(client, origin):
    task = client.create_task()
    task.custom_start({"query": {"source": f"{origin.url}/bbb_720p_5s_aac51.mp4", "format": [{
        "output": "advanced_hls", "segment_duration": 2, "duration": 3, "tag": "ladder",
        "stream": [{"resolution": 360, "tag": "360p", "audio_codec": "libfdk_aac"}, {"resolution": 180}]}]}})
    assert not task.error, task.message
    status = wait_task(task)
    assert status["status"] == "completed", status
    [video] = status["videos"]
    assert video["url"].endswith("/playlist.m3u8") and video["output_format"] == "advanced_hls"
    assert (video["tag"], video["user_tag"]) == ("video-0-0", "ladder")
    assert video["meta"]["height"] == 360 and video["meta"]["codec"] == "h264"  # the top rung
    assert [(s["tag"], s["user_tag"]) for s in video["streams"]] == [
        ("video-0-0", "360p"), ("video-0-1", None), ("audio-0-0", None)]
    assert any(w["message"].startswith("libfdk_aac is not available") and w["tag"] == "video-0-0"
               for w in status["warnings"])
    origin_header = {"Origin": "http://player.test"}
    master = httpx.get(video["url"], headers=origin_header)
    assert master.status_code == 200 and master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert master.headers["access-control-allow-origin"] == "*"
    assert "#EXT-X-STREAM-INF:" in master.text and 'CODECS="avc1.' in master.text
    base = video["url"].rsplit("/", 1)[0]
    chunklist = httpx.get(f"{base}/video_1/chunklist.m3u8").text
    segment = next(line for line in chunklist.splitlines() if line.endswith(".ts"))
    part = httpx.get(f"{base}/video_1/{segment}", headers={"Range": "bytes=0-187", **origin_header})
    assert part.status_code == 206 and part.headers["content-type"] == "video/mp2t"
    assert len(part.content) == 188 and part.content[0] == 0x47  # one TS packet
    preflight = httpx.options(f"{base}/video_1/{segment}", headers={
        **origin_header, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})
    assert preflight.status_code == 200 and "range" in preflight.headers["access-control-allow-headers"].lower()

"""Streaming outputs made by the real FFmpeg and read back with PyAV: keyframe-aligned ladders, segment durations,
measured master playlists, CMAF, WebM-DASH, audio-only HLS. (Playback in browsers is tested elsewhere.)"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import av
import pytest

from vidmill.core.query import check_supported, parse_query
from vidmill.engine import probe as probing
from vidmill.engine.streaming import filter_graph, media_playlist, per_stream, rung_threads
from vidmill.errors import QueryError
from vidmill.pipeline import describe_outputs, plan_job, run_plan

SOURCE = "bbb_720p_5s_aac51.mp4"  # 1280x720 25 fps, 5.3 s, AAC 5.1
FAST = {"preset": "veryfast"}


def make(tmp_path: Path, media: Path, fmt: dict, source: str = SOURCE):
    q = parse_query(json.dumps({"query": {"source": "https://h.invalid/s.mp4", "format": [fmt]}}))
    check_supported(q)
    src = media / source
    pj = probing.probe(src)
    workdir = tmp_path / "out"
    workdir.mkdir(parents=True)
    plan = plan_job(q, q.format[0], 0, src=src, info=probing.media_info(pj), probe_json=pj, workdir=workdir)
    run_plan(plan, workdir)
    return plan, describe_outputs(plan, workdir), workdir


def packets(path: Path, kind: str = "video") -> list[tuple[float, bool]]:
    """(pts seconds, keyframe) of every packet of the file's first ``kind`` stream, in decode order."""
    with av.open(str(path)) as c:
        streams = c.streams.video if kind == "video" else c.streams.audio
        if not streams:
            return []
        s = streams[0]
        return [(float(p.pts * s.time_base), p.is_keyframe) for p in c.demux(s) if p.pts is not None]


def master_variants(master: Path) -> list[tuple[dict, str]]:
    lines = master.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))
            out.append(({k: v.strip('"') for k, v in attrs.items()}, lines[i + 1]))
    return out


def test_a_four_rung_ladder_has_identical_keyframes_and_exact_segments(tmp_path, media):
    seg = 2
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_hls", "segment_duration": seg, "video_codec_parameters": FAST,
        "stream": [{"resolution": 720, "tag": "720p"}, {"resolution": 480}, {"resolution": 360}, {"resolution": 240}]})
    assert len(plan.steps) == 1 and plan.steps[0].argv.count("-i") == 1  # one process, the source read once
    assert "split=4" in plan.steps[0].argv[plan.steps[0].argv.index("-filter_complex") + 1]
    videos = [d for d in described if d.kind == "video"]
    assert [d.facts["height"] for d in videos] == [720, 480, 360, 240]
    frame = 1 / 25
    keyframes, starts = [], []
    for d in videos:
        playlist = d.files[0]
        entries = media_playlist(playlist)
        durations = [e[0] for e in entries]
        assert all(abs(x - seg) <= frame / 2 for x in durations[:-1]), durations
        assert 0 < durations[-1] <= seg + frame / 2
        assert sum(durations) == pytest.approx(5.28, abs=frame)
        keys = []
        for _, segment in entries:
            pk = packets(segment)
            assert pk[0][1], f"{segment.name} does not start with a keyframe"
            keys += [t for t, k in pk if k]
        keyframes.append(keys)
        starts.append(min(t for t, _ in packets(entries[0][1])))
    assert len(keyframes[0]) == 3 and all(k == keyframes[0] for k in keyframes), keyframes
    assert [round(b - a, 6) for a, b in zip(keyframes[0], keyframes[0][1:])] == [seg, seg]
    assert len(set(starts)) == 1  # one B-frame structure: every rung's first frame is shown at the same time
    audio = next(d for d in described if d.kind == "audio")
    audio_start = min(t for t, _ in packets(media_playlist(audio.files[0])[0][1], "audio"))
    assert abs(audio_start - starts[0]) < frame  # audio and video start within a frame

    # the master: measured bandwidth, codecs read from the streams, the audio group
    master = plan.main
    text = master.read_text()
    assert '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"' in text and 'URI="audio_1/chunklist.m3u8"' in text
    variants = master_variants(master)
    assert [v[1] for v in variants] == [f"video_{i}/chunklist.m3u8" for i in (1, 2, 3, 4)]
    audio_peak = max(p.stat().st_size * 8 / d for d, p in media_playlist(audio.files[0]))
    for (attrs, uri), d in zip(variants, videos):
        entries = media_playlist(wd / uri)
        peak = max(p.stat().st_size * 8 / dur for dur, p in entries)
        assert int(attrs["BANDWIDTH"]) == math.ceil(peak) + math.ceil(audio_peak)
        assert int(attrs["AVERAGE-BANDWIDTH"]) < int(attrs["BANDWIDTH"])
        assert re.fullmatch(r"avc1\.4d40[0-9a-f]{2},mp4a\.40\.2", attrs["CODECS"]), attrs["CODECS"]
        assert attrs["RESOLUTION"] == f"{d.facts['width']}x{d.facts['height']}"
        assert attrs["FRAME-RATE"] == "25.000" and attrs["AUDIO"] == "audio"
    assert videos[0].user_tag == "720p" and videos[1].user_tag is None


def test_fmp4_hevc_single_folder_decodes_with_hvc1(tmp_path, media):
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_hls", "fmp4": 1, "single_folder": 1, "segment_duration": 2, "duration": 4,
        "playlist_name": "master.m3u8",
        "stream": [{"resolution": 360, "video_codec": "libx265"}, {"resolution": 180, "chunklist_name": "low.m3u8"}]})
    assert {p.parent for d in described for p in d.files} == {wd}  # one folder
    assert (wd / "master.m3u8").is_file() and (wd / "low.m3u8").is_file()
    variants = master_variants(wd / "master.m3u8")
    assert variants[0][0]["CODECS"].startswith("hvc1.1.6.L") and variants[1][1] == "low.m3u8"
    assert "#EXT-X-VERSION:7" in (wd / "master.m3u8").read_text()
    hevc = described[1]
    keys = []
    for _, segment in media_playlist(hevc.files[0]):
        joined = tmp_path / "joined.mp4"
        joined.write_bytes((wd / "video_1_init.mp4").read_bytes() + segment.read_bytes())
        with av.open(str(joined)) as c:
            assert c.streams.video[0].codec_context.codec_tag == "hvc1"
            frames = list(c.decode(video=0))
            assert frames and frames[0].key_frame
        keys.append(packets(joined)[0][0])
    assert keys == [1.0, 3.0]  # keyframes on the segment boundaries (timestamps start at the 1 s offset)


def test_muxed_audio_and_iframe_playlists(tmp_path, media):
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_hls", "separate_audio": 0, "i_frames_only": 1, "segment_duration": 2,
        "video_codec_parameters": FAST, "stream": [{"resolution": 240}, {"resolution": 144}]})
    text = plan.main.read_text()
    assert "#EXT-X-MEDIA:" not in text and "AUDIO=" not in text
    assert [d.kind for d in described] == ["manifest", "video", "video"]
    first = media_playlist(described[1].files[0])[0][1]
    assert packets(first, "audio")  # audio travels inside each variant's segments
    assert 'CODECS="avc1.4d40' in text and ',mp4a.40.2"' in text
    iframe_lines = [ln for ln in text.splitlines() if ln.startswith("#EXT-X-I-FRAME-STREAM-INF:")]
    assert len(iframe_lines) == 2 and 'URI="video_1/iframes.m3u8"' in iframe_lines[0]
    iframes = (wd / "video_1" / "iframes.m3u8").read_text()
    assert "#EXT-X-I-FRAMES-ONLY" in iframes
    ranges = re.findall(r"#EXT-X-BYTERANGE:(\d+)@(\d+)\n(\S+)", iframes)
    assert len(ranges) == 3
    for length, offset, uri in ranges:
        data = (wd / "video_1" / uri).read_bytes()[int(offset):int(offset) + int(length)]
        piece = tmp_path / "iframe.ts"
        piece.write_bytes(data)
        with av.open(str(piece)) as c:
            frame = next(c.decode(video=0))
            assert frame.key_frame and frame.height == 240


def test_dash_with_cmaf_master_shares_one_set_of_segments(tmp_path, media):
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_dash", "create_m3u8_playlist": 1, "segment_duration": 2,
        "video_codec_parameters": FAST, "stream": [{"resolution": 360}, {"resolution": 180}]})
    mpd = plan.main.read_text()
    assert plan.main.name == "playlist.mpd"
    sets = re.findall(r'<AdaptationSet[^>]*contentType="(\w+)"', mpd)
    assert sets == ["video", "audio"]  # audio in its own adaptation set
    timelines = re.findall(r"<SegmentTimeline>(.*?)</SegmentTimeline>", mpd, re.S)
    assert timelines[0] == timelines[1]  # the video representations share segment boundaries
    for d in described[1:]:
        assert f'bandwidth="{d.facts["bandwidth"]}"' in mpd
    variants = master_variants(wd / "master.m3u8")
    assert [uri for _, uri in variants] == ["media_0.m3u8", "media_1.m3u8"]
    assert 'URI="media_2.m3u8"' in (wd / "master.m3u8").read_text()
    hls_segments = {p.name for _, p in media_playlist(wd / "media_0.m3u8")}
    assert hls_segments == {p.name for p in wd.glob("chunk-0-*.m4s")}  # the MPD's segments, not a copy
    assert all(v[0]["CODECS"].endswith(",mp4a.40.2") for v in variants)


def test_webm_dash_is_vp9_and_opus(tmp_path, media):
    plan, described, wd = make(tmp_path, media, {
        "output": "webm_dash", "segment_duration": 2, "duration": 2, "stream": [{"resolution": 144}]})
    mpd = plan.main.read_text()
    assert 'codecs="vp09.' in mpd and 'codecs="opus"' in mpd
    assert [d.facts.get("video_codec") or d.facts.get("audio_codec") for d in described[1:]] == ["vp9", "opus"]


def test_hls_audio_is_an_audio_only_ladder(tmp_path, media):
    plan, described, wd = make(tmp_path, media, {
        "output": "hls_audio", "segment_duration": 2, "duration": 3,
        "stream": [{"audio_bitrate": 96}, {"audio_bitrate": 48}]})
    variants = master_variants(plan.main)
    assert [uri for _, uri in variants] == ["audio_1/chunklist.m3u8", "audio_2/chunklist.m3u8"]
    assert all(attrs["CODECS"] == "mp4a.40.2" and "RESOLUTION" not in attrs for attrs, _ in variants)
    assert int(variants[0][0]["AVERAGE-BANDWIDTH"]) > int(variants[1][0]["AVERAGE-BANDWIDTH"])
    assert all(not packets(p) for d in described[1:] for _, p in media_playlist(d.files[0]))


def test_streams_larger_than_the_source_are_skipped(tmp_path, media):
    plan, described, _ = make(tmp_path, media, {
        "output": "advanced_hls", "segment_duration": 2, "duration": 2,
        "stream": [{"resolution": 1080}, {"resolution": 144}]}, source="carphone_qcif_sar.mp4")
    assert [(n.code, n.stream_index) for n in plan.notices] == [("skipped", 0)]
    assert [d.stream_index for d in described if d.kind == "video"] == [1]


def test_source_frame_rate_that_cannot_share_boundaries_is_refused(tmp_path, media):
    # carphone is 29.97 fps: 2 s is not whole frames, so it cannot share boundaries with a 25 fps stream
    with pytest.raises(QueryError) as err:
        make(tmp_path, media, {"output": "advanced_hls", "segment_duration": 2,
                               "stream": [{"resolution": 144}, {"resolution": 96, "framerate": "25"}]},
             source="carphone_qcif_sar.mp4")
    assert err.value.field == "format[0].stream[0].framerate"


def test_filter_graph_runs_shared_filters_once():
    assert filter_graph([["bwdif=mode=send_frame", "scale=640:360", "setsar=1"],
                         ["bwdif=mode=send_frame", "scale=320:180", "setsar=1"]]) == (
        "[0:v:0]bwdif=mode=send_frame,split=2[s0][s1];[s0]scale=640:360,setsar=1[v0];[s1]scale=320:180,setsar=1[v1]")
    assert filter_graph([["scale=2:2", "setsar=1"]]) == "[0:v:0]scale=2:2,setsar=1[v0]"
    assert per_stream(["-c:v", "libx264", "-profile:v", "main", "-crf", "23"], 2) == [
        "-c:v:2", "libx264", "-profile:v:2", "main", "-crf:v:2", "23"]


def test_aes128_segments_decrypt_with_the_published_key(tmp_path, media):
    key = "00112233445566778899aabbccddeeff"
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_hls", "segment_duration": 2, "duration": 4, "encryption": {"key": key},
        "stream": [{"resolution": 180}]})
    assert (wd / "encryption.key").read_bytes() == bytes.fromhex(key)
    assert wd / "encryption.key" in described[0].files  # published with the master
    assert key not in " ".join(plan.steps[0].argv)  # the key never travels in argv
    chunklist = described[1].files[0].read_text()
    iv = re.search(r'#EXT-X-KEY:METHOD=AES-128,URI="\.\./encryption\.key",IV=0x([0-9a-f]{32})', chunklist).group(1)
    segment = media_playlist(described[1].files[0])[0][1]
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(segment))  # ciphertext
    options = {"key": key, "iv": iv, "protocol_whitelist": "crypto,file"}
    with av.open(f"crypto:{segment}", options=options) as c:
        frames = list(c.decode(video=0))
        assert frames[0].key_frame and frames[0].height == 180
    assert described[1].facts["height"] == 180 and described[1].facts["codecs"].startswith("avc1.")


def test_aes128_with_key_url_does_not_publish_the_key(tmp_path, media):
    plan, described, wd = make(tmp_path, media, {
        "output": "hls_audio", "segment_duration": 2, "duration": 2,
        "encryption": {"key": "ffeeddccbbaa99887766554433221100", "iv": "0f" * 16,
                       "key_url": "https://keys.example.com/k1"}})
    files = [f.name for d in described for f in d.files]
    assert "encryption.key" not in files and not any(f.startswith(".") for f in files)
    assert '#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example.com/k1",IV=0x' + "0f" * 16 in \
        described[1].files[0].read_text()


def test_single_folder_names_that_would_collide_are_refused(tmp_path, media):
    with pytest.raises(QueryError) as err:
        make(tmp_path, media, {"output": "advanced_hls", "single_folder": 1, "duration": 1, "stream": [
            {"resolution": 144, "chunklist_name": "chunklist_video_2.m3u8"}, {"resolution": 96}]})
    assert err.value.field == "format[0].stream" and "chunklist_video_2.m3u8" in err.value.message


def test_a_source_without_audio_makes_a_video_only_ladder(tmp_path, media):
    plan, described, _ = make(tmp_path, media, {"output": "advanced_hls", "segment_duration": 2, "duration": 2,
                                                "stream": [{"resolution": 144}]}, source="city_cc0_720x405_mpeg2.mpg")
    text = plan.main.read_text()
    assert "AUDIO=" not in text and 'CODECS="avc1.' in text and ",mp4a" not in text
    assert [d.kind for d in described] == ["manifest", "video"]


@pytest.mark.parametrize("cpus, expected", [
    pytest.param(2, [2, 1, 1, 1], id="2-cores"),
    pytest.param(8, [7, 3, 1, 1], id="8-cores"),
    pytest.param(1, [1, 1, 1, 1], id="1-core-at-least-one-each"),
])
def test_rung_threads_share_one_and_a_half_threads_per_core_by_area(cpus, expected):
    areas = [1920 * 1080, 1280 * 720, 854 * 480, 640 * 360]
    assert rung_threads(areas, cpus) == expected


def test_each_x264_rung_of_a_ladder_gets_its_own_thread_count(tmp_path, media, monkeypatch):
    monkeypatch.setattr("vidmill.engine.streaming.os.cpu_count", lambda: 2)
    fmt = {"output": "advanced_hls", "segment_duration": 2, "video_codec": "libx264",
           "stream": [{"resolution": 360}, {"resolution": 240}]}
    query = parse_query(json.dumps({"query": {"source": "https://x.invalid/s.mp4", "format": [fmt]}}))
    src = media / "bbb_trailer_720p_55s_mp3.mp4"
    pj = probing.probe(src)
    plan = plan_job(query, query.format[0], 0, src=src, info=probing.media_info(pj), probe_json=pj, workdir=tmp_path)
    argv = plan.steps[0].argv
    threads = [argv[i + 1] for i, a in enumerate(argv) if a == "-threads"]
    assert threads == ["2", "1"]  # 640x360 and 426x240 share 3 threads by area; after -bf, one per output
    assert argv.index("-threads") > argv.index("-bf")

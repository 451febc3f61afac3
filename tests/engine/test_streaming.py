"""Streaming outputs made by the real FFmpeg and read back with PyAV: keyframe-aligned ladders, segment durations,
measured master playlists, CMAF, WebM-DASH, audio-only HLS. (Playback in browsers is tested elsewhere.)"""

from __future__ import annotations

import json
import math
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import av
import pytest

from vidmill.core.query import check_supported, parse_query
from tests.engine import bmff
from vidmill.engine import probe as probing
from vidmill.engine.streaming import (filter_graph, media_playlist, peak_rate, per_stream, rung_threads,
                                      usable_cpus)
from vidmill.errors import EncodeError, QueryError
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


def rfc_peak(entries: list[tuple[float, Path]]) -> float:
    """RFC 8216 §4.1 by brute force: the largest rate of any contiguous run of segments lasting 0.5-1.5 x the target
    duration (the largest EXTINF rounded to the nearest integer); the whole rate when no run qualifies."""
    sizes = [(d, p.stat().st_size * 8) for d, p in entries]
    target = max(1, *(int(d + 0.5) for d, _ in sizes))
    runs = [sizes[i:j] for i in range(len(sizes)) for j in range(i + 1, len(sizes) + 1)]
    fits = [sum(b for _, b in r) / sum(d for d, _ in r) for r in runs
            if 0.5 * target <= sum(d for d, _ in r) <= 1.5 * target or (len(r) == 1 and r[0][0] > 1.5 * target)]
    return max(fits) if fits else sum(b for _, b in sizes) / sum(d for d, _ in sizes)


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
    audio_peak = rfc_peak(media_playlist(audio.files[0]))
    for (attrs, uri), d in zip(variants, videos):
        entries = media_playlist(wd / uri)
        assert int(attrs["BANDWIDTH"]) == math.ceil(rfc_peak(entries)) + math.ceil(audio_peak)
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
        t = bmff.track(wd / "video_1_init.mp4")
        first = bmff.samples(segment, t.timescale)[0]
        assert first[0] == first[1]  # the keyframe is presented at its decode time (negative offsets after it)
        keys.append(round(first[1] + t.shift, 6))
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


def test_peak_rate_takes_runs_of_half_to_one_and_a_half_target_durations():
    # two full 2 s segments and a 0.04 s tail holding one keyframe: alone the tail reads 11.6 Mbit/s
    sizes = [(2.0, 367_500), (2.0, 290_750), (0.04, 58_090)]
    assert peak_rate(sizes, 2) == pytest.approx(max(367_500 * 8 / 2, (290_750 + 58_090) * 8 / 2.04))
    assert peak_rate(sizes, 2) < 1.5e6
    assert peak_rate([(0.3, 1000)], 2) == pytest.approx(1000 * 8 / 0.3)  # shorter than half a target: its rate
    assert peak_rate([(1.0, 100), (1.0, 900)], 1) == pytest.approx(7200)  # every segment counts alone
    assert peak_rate([], 2) == 0


def test_a_short_last_segment_does_not_inflate_bandwidth(tmp_path, media):
    """RFC 8216 §4.1: a 0.04 s last segment (one keyframe) is measured with its neighbour, not alone; before, the
    master said 11.9 Mbit/s for a 1.5 Mbit/s rendition. The same peak goes into DASH @bandwidth."""
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_hls", "segment_duration": 2, "duration": 4.02, "video_codec_parameters": FAST,
        "stream": [{"resolution": 360}]})
    video = next(d for d in described if d.kind == "video")
    entries = media_playlist(video.files[0])
    assert len(entries) == 3 and entries[-1][0] < 0.1, entries  # the short tail this test is about
    alone = [p.stat().st_size * 8 / dur for dur, p in entries]
    full = max(alone[:-1])
    attrs, _ = master_variants(plan.main)[0]
    audio = next(d for d in described if d.kind == "audio")
    video_peak = int(attrs["BANDWIDTH"]) - math.ceil(rfc_peak(media_playlist(audio.files[0])))
    assert video_peak == math.ceil(rfc_peak(entries))
    assert full <= video_peak < 1.5 * full < alone[-1], (alone, video_peak)


def test_a_keyframe_period_of_fractional_frames_makes_one_keyframe_per_period(tmp_path, media):
    """``keyframe: "0.5s"`` at 25 fps (12.5 frames): keyframes at 0, 0.52, 1.0, 1.52 s... on every rung, never a
    second IDR one frame before the forced one (a GOP of 12 put one at 0.48 and the forced one at 0.52)."""
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_hls", "segment_duration": 1, "keyframe": "0.5s", "duration": 2.5,
        "video_codec_parameters": FAST, "stream": [{"resolution": 240}, {"resolution": 144}]})
    keys = []
    for d in (d for d in described if d.kind == "video"):
        times = [t for _, seg in media_playlist(d.files[0]) for t, k in packets(seg) if k]
        keys.append([round(t - times[0], 3) for t in times])
    assert keys[0] == keys[1] == [0.0, 0.52, 1.0, 1.52, 2.0], keys


def test_an_iframe_playlist_with_one_keyframe_keeps_its_target_duration(tmp_path, media):
    """A source shorter than one segment has one keyframe, lasting to the end: EXT-X-TARGETDURATION covers it."""
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_hls", "i_frames_only": 1, "duration": 3, "video_codec_parameters": FAST,
        "stream": [{"resolution": 144}]})
    text = (wd / "video_1" / "iframes.m3u8").read_text()
    extinf = [float(x) for x in re.findall(r"#EXTINF:([\d.]+),", text)]
    target = int(re.search(r"#EXT-X-TARGETDURATION:(\d+)", text).group(1))
    assert len(extinf) == 1 and extinf[0] == pytest.approx(3.0, abs=0.05)
    assert all(int(d + 0.5) <= target for d in extinf) and target == 3


def test_dash_rungs_of_different_codecs_get_one_adaptation_set_each(tmp_path, media):
    """An HEVC rung beside H.264 ones: a player picks the set it can decode and switches within it."""
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_dash", "segment_duration": 2, "duration": 2, "video_codec_parameters": FAST,
        "stream": [{"resolution": 360}, {"resolution": 240, "video_codec": "libx265"}, {"resolution": 180}]})
    root = ET.fromstring(plan.main.read_text())
    ns = {"m": "urn:mpeg:dash:schema:mpd:2011"}
    sets = []
    for aset in root.iter(f"{{{ns['m']}}}AdaptationSet"):
        reps = aset.findall("m:Representation", ns)
        sets.append((aset.get("contentType"), sorted({r.get("codecs").split(".")[0] for r in reps}),
                     sorted(int(r.get("height")) for r in reps if r.get("height"))))
    assert sets == [("video", ["avc1"], [180, 360]), ("video", ["hvc1"], [240]), ("audio", ["mp4a"], [])], sets
    for d in (d for d in described if d.kind == "video"):
        init = next(f for f in d.files if f.name.startswith("init-"))
        first = next(f for f in d.files if f.name.startswith("chunk-"))
        piece = tmp_path / f"joined-{init.stem}.mp4"
        piece.write_bytes(init.read_bytes() + first.read_bytes())
        with av.open(str(piece)) as c:
            assert next(c.decode(video=0)).height == d.facts["height"]


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
    assert not (wd / "master.m3u8").exists()  # the seed's name: "creates playlist.m3u8 file in the DASH output"
    variants = master_variants(wd / "playlist.m3u8")
    assert [uri for _, uri in variants] == ["media_0.m3u8", "media_1.m3u8"]
    assert 'URI="media_2.m3u8"' in (wd / "playlist.m3u8").read_text()
    hls_segments = {p.name for _, p in media_playlist(wd / "media_0.m3u8")}
    assert hls_segments == {p.name for p in wd.glob("chunk-0-*.m4s")}  # the MPD's segments, not a copy
    assert all(v[0]["CODECS"].endswith(",mp4a.40.2") for v in variants)


def test_dash_renditions_link_to_what_plays_them(tmp_path, media):
    """Status points each rendition at a playlist, never at its init segment: its own HLS playlist with CMAF,
    else the MPD (a DASH rendition has no manifest of its own)."""
    plan, described, wd = make(tmp_path / "cmaf", media, {
        "output": "advanced_dash", "create_m3u8_playlist": 1, "segment_duration": 2, "duration": 2,
        "video_codec_parameters": FAST, "stream": [{"resolution": 180}]})
    assert [(d.kind, d.link.name if d.link else d.files[0].name) for d in described] == [
        ("manifest", "playlist.mpd"), ("video", "media_0.m3u8"), ("audio", "media_1.m3u8")]
    plan, described, wd = make(tmp_path / "dash", media, {
        "output": "webm_dash", "segment_duration": 2, "duration": 2, "stream": [{"resolution": 144}]})
    assert [d.link.name for d in described if d.kind != "manifest"] == ["playlist.mpd", "playlist.mpd"]


def test_a_dash_playlist_name_taking_the_cmaf_masters_name_is_refused():
    q = parse_query(json.dumps({"query": {"source": "https://h.invalid/s.mp4", "format": [
        {"output": "advanced_dash", "create_m3u8_playlist": 1, "playlist_name": "playlist.m3u8"}]}}))
    with pytest.raises(QueryError) as err:
        check_supported(q)
    assert err.value.field == "format[0].playlist_name"


@pytest.mark.parametrize("fmp4", [0, 1])
def test_a_window_with_no_frames_fails_as_an_output_error_not_a_source_one(tmp_path, media, fmp4):
    """start_time past the last video frame: FFmpeg writes an empty rendition. fMP4 used to end `completed` with a
    0 s chunklist (FRAME-RATE=12800); TS said "source is not a readable media file", blaming the source."""
    with pytest.raises(EncodeError) as err:
        make(tmp_path, media, {"output": "advanced_hls", "fmp4": fmp4, "start_time": 5.3, "duration": 1,
                               "video_codec_parameters": FAST, "stream": [{"resolution": 144}]})
    assert "start_time" in err.value.message and "source is not" not in err.value.message, err.value.message
    assert "video_1/" in err.value.message


def test_a_width_only_dash_rung_is_rounding_not_another_shape(tmp_path, media):
    """width 333 of 16:9 gives 332x188 (each side rounded to even): 2.2 px off 16:9, which is rounding; it was
    refused as "a 332x188 picture (1.778:1) cannot share ... with 1.778:1 streams"."""
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_dash", "segment_duration": 1, "duration": 1, "video_codec_parameters": FAST,
        "stream": [{"width": 333}, {"resolution": 144}]})
    assert sorted(d.facts["width"] for d in described if d.kind == "video") == [256, 332]


def test_an_hls_audio_chunklist_named_like_the_master_is_refused_at_start():
    q = parse_query(json.dumps({"query": {"source": "https://h.invalid/s.mp4", "format": [
        {"output": "hls_audio", "single_folder": 1, "stream": [{"chunklist_name": "playlist.m3u8"}]}]}}))
    with pytest.raises(QueryError) as err:
        check_supported(q)
    assert err.value.field == "format[0].stream[0].chunklist_name"


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


def test_aes128_with_no_key_generates_one_per_output(tmp_path, media):
    """``encryption: {}``: a random key and IV, published beside the master; segments decrypt with them only."""
    fmt = {"output": "advanced_hls", "segment_duration": 2, "duration": 2, "encryption": {},
           "stream": [{"resolution": 144}]}
    keys = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        _, described, wd = make(tmp_path / run, media, fmt)
        key = (wd / "encryption.key").read_bytes()
        assert len(key) == 16 and wd / "encryption.key" in described[0].files
        iv = re.search(r'#EXT-X-KEY:METHOD=AES-128,URI="\.\./encryption\.key",IV=0x([0-9a-f]{32})',
                       described[1].files[0].read_text()).group(1)
        segment = media_playlist(described[1].files[0])[0][1]
        with av.open(f"crypto:{segment}", options={"key": key.hex(), "iv": iv,
                                                    "protocol_whitelist": "crypto,file"}) as c:
            assert next(c.decode(video=0)).height == 144
        keys.append((key, iv))
    assert keys[0][0] != keys[1][0] and keys[0][1] != keys[1][1]  # never a fixed key or IV


def _openssl_decrypt(path: Path, key: str, iv: str) -> bytes:
    """AES-128-CBC + PKCS7 undone by OpenSSL's command line: a consumer that shares no code with vidmill."""
    return subprocess.run(["openssl", "enc", "-d", "-aes-128-cbc", "-K", key, "-iv", iv, "-in", str(path)],
                          check=True, capture_output=True).stdout


def test_aes128_fmp4_encrypts_init_and_segments_whole(tmp_path, media):
    key, iv = "00112233445566778899aabbccddeeff", "a5" * 16
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_hls", "fmp4": 1, "segment_duration": 2, "encryption": {"key": key, "iv": iv},
        "video_codec_parameters": FAST, "stream": [{"resolution": 180}, {"resolution": 144}]})
    assert "-hls_key_info_file" not in plan.steps[0].argv and key not in " ".join(plan.steps[0].argv)
    assert (wd / "encryption.key").read_bytes() == bytes.fromhex(key)
    assert [d.kind for d in described] == ["manifest", "video", "video", "audio"]
    for d in described[1:]:
        chunklist, init = d.files[0], d.files[1]
        lines = chunklist.read_text().splitlines()
        tag = f'#EXT-X-KEY:METHOD=AES-128,URI="../encryption.key",IV=0x{iv}'
        assert lines.count(tag) == 1 and lines.index(tag) + 1 == lines.index('#EXT-X-MAP:URI="init.mp4"'), lines
        entries = media_playlist(chunklist)
        assert len(entries) == 3
        clear_init = _openssl_decrypt(init, key, iv)
        assert clear_init[4:8] == b"ftyp" and init.read_bytes()[4:8] != b"ftyp"  # the init segment is ciphertext
        total = 0
        for duration, segment in entries:
            assert segment.stat().st_size % 16 == 0
            with pytest.raises(av.error.InvalidDataError), av.open(str(segment)) as c:
                list(c.decode())
            piece = tmp_path / "piece.mp4"
            piece.write_bytes(clear_init + _openssl_decrypt(segment, key, iv))
            with av.open(str(piece)) as c:
                if d.kind == "video":
                    frames = list(c.decode(video=0))
                    assert frames[0].key_frame and frames[0].height == d.facts["height"]
                    assert abs(len(frames) - duration * 25) <= 1, (segment.name, len(frames), duration)
                    total += len(frames)
                else:
                    assert sum(f.samples for f in c.decode(audio=0)) > 0
        if d.kind == "video":
            assert abs(total - 5.28 * 25) <= 2, total
        # bandwidth measured from the files as served (ciphertext, padded)
        assert d.facts["codecs"].startswith("avc1." if d.kind == "video" else "mp4a.")
        assert plan.outputs[described.index(d)].extra["bandwidth"] == math.ceil(rfc_peak(entries))
    assert master_variants(plan.main)[0][0]["CODECS"].startswith("avc1.")


def test_aes128_fmp4_audio_only_with_key_url(tmp_path, media):
    key, iv = "ffeeddccbbaa99887766554433221100", "0f" * 16
    _, described, _ = make(tmp_path, media, {
        "output": "hls_audio", "fmp4": 1, "segment_duration": 2, "duration": 4,
        "encryption": {"key": key, "iv": iv, "key_url": "https://keys.example.com/k1"}})
    files = [f.name for d in described for f in d.files]
    assert "encryption.key" not in files and not any(f.startswith(".") for f in files)
    chunklist, init = described[1].files[0], described[1].files[1]
    lines = chunklist.read_text().splitlines()
    i = lines.index(f'#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example.com/k1",IV=0x{iv}')
    assert lines[i + 1] == '#EXT-X-MAP:URI="init.mp4"'
    piece = tmp_path / "piece.mp4"
    for _, segment in media_playlist(chunklist):
        piece.write_bytes(_openssl_decrypt(init, key, iv) + _openssl_decrypt(segment, key, iv))
        with av.open(str(piece)) as c:
            assert sum(f.samples for f in c.decode(audio=0)) > 0
    assert described[1].facts["codecs"] == "mp4a.40.2"


@pytest.mark.parametrize("keyframe,muxed", [(None, False), ("25", False), (None, True)],
                         ids=["gop-is-segment", "two-keyframes-a-segment", "muxed-audio-single-folder"])
def test_fmp4_iframe_playlists_decode_one_keyframe_per_range(tmp_path, media, keyframe, muxed):
    seg = 2
    extra = {"keyframe": keyframe} if keyframe else {}
    more = {"separate_audio": 0, "single_folder": 1} if muxed else {}
    plan, described, wd = make(tmp_path, media, {
        "output": "advanced_hls", "fmp4": 1, "i_frames_only": 1, "segment_duration": seg, **more,
        "video_codec_parameters": FAST, "stream": [{"resolution": 240, **extra}, {"resolution": 144, **extra}]})
    text = plan.main.read_text()
    iframe_lines = [ln for ln in text.splitlines() if ln.startswith("#EXT-X-I-FRAME-STREAM-INF:")]
    videos = [d for d in described if d.kind == "video"]
    assert len(iframe_lines) == len(videos) == 2
    for line, d, variant in zip(iframe_lines, videos, master_variants(plan.main)):
        attrs = {k: v.strip('"') for k, v in re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])}
        assert set(attrs) == {"BANDWIDTH", "CODECS", "RESOLUTION", "URI"}, attrs
        assert attrs["CODECS"] == variant[0]["CODECS"].split(",")[0] and attrs["CODECS"].startswith("avc1.")
        assert attrs["RESOLUTION"] == variant[0]["RESOLUTION"] == f"{d.facts['width']}x{d.facts['height']}"
        iframes = wd / attrs["URI"]
        assert iframes in d.files and 0 < int(attrs["BANDWIDTH"]) < int(variant[0]["BANDWIDTH"])
        body = iframes.read_text()
        assert "#EXT-X-I-FRAMES-ONLY" in body and f'#EXT-X-MAP:URI="{d.files[1].name}"' in body
        assert "#EXT-X-VERSION:7" in body
        init = d.files[1].read_bytes()
        # the keyframe times of the whole rendition, read from init + every segment
        whole = tmp_path / "whole.mp4"
        entries = media_playlist(d.files[0])
        whole.write_bytes(init + b"".join(p.read_bytes() for _, p in entries))
        with av.open(str(whole)) as c:
            expected = [float(f.time) for f in c.decode(video=0) if f.key_frame]
        assert len(expected) == (6 if keyframe else 3), expected
        ranges = re.findall(r"#EXTINF:([\d.]+),\n#EXT-X-BYTERANGE:(\d+)@(\d+)\n(\S+)", body)
        assert len(ranges) == 3  # one per fragment: FFmpeg's hls muxer writes one fragment per segment
        # times as MSE reads them from the boxes (FFmpeg's demuxer shifts tracks with negative composition
        # offsets by the largest offset it has seen, which differs between a lone keyframe and the whole file)
        first = bmff.track(d.files[1])
        assert first.kind == "vide"  # the first track, which bmff.samples reads
        timescale = first.timescale
        openings = [bmff.samples(p, timescale)[0][1] for _, p in entries]
        times = []
        for _, length, offset, uri in ranges:
            data = (iframes.parent / uri).read_bytes()[int(offset):int(offset) + int(length)]
            assert data[4:8] == b"moof"
            piece = tmp_path / "iframe.mp4"
            piece.write_bytes(init + data)
            with av.open(str(piece)) as c:
                frames = list(c.decode(video=0))
            assert len(frames) == 1 and frames[0].key_frame and frames[0].height == d.facts["height"]
            fragment = tmp_path / "fragment.m4s"
            fragment.write_bytes(data)
            times.append(bmff.samples(fragment, timescale)[0][1])
        assert times == pytest.approx(openings, abs=1e-6) and len(set(times)) == 3
        durations = [float(x) for x, _, _, _ in ranges]
        assert durations[:2] == pytest.approx([seg, seg], abs=0.001)
        assert sum(durations) == pytest.approx(5.28, abs=0.04)


def test_single_folder_names_that_would_collide_are_refused(tmp_path, media):
    with pytest.raises(QueryError) as err:
        make(tmp_path, media, {"output": "advanced_hls", "single_folder": 1, "duration": 1, "stream": [
            {"resolution": 144, "chunklist_name": "chunklist_video_2.m3u8"}, {"resolution": 96}]})
    assert err.value.field == "format[0].stream" and "chunklist_video_2.m3u8" in err.value.message


@pytest.mark.parametrize("fmp4", [0, 1])
def test_a_key_url_that_cannot_go_in_a_playlist_is_refused_at_start(fmp4):
    """Written inside EXT-X-KEY's quoted URI: a quote would end it. Refused by check_supported (start_encode2),
    before any encode; for fMP4 it used to surface only after the whole encode, without the format index."""
    q = parse_query(json.dumps({"query": {"source": "https://h.invalid/s.mp4", "format": [
        {"output": "mp4"},
        {"output": "advanced_hls", "fmp4": fmp4, "encryption": {"key_url": 'https://k.example/a"b'},
         "stream": [{"resolution": 144}]}]}}))
    with pytest.raises(QueryError) as err:
        check_supported(q)
    assert err.value.field == "format[1].encryption.key_url" and "quotes" in err.value.message


def test_a_source_without_audio_makes_a_video_only_ladder(tmp_path, media):
    plan, described, _ = make(tmp_path, media, {"output": "advanced_hls", "segment_duration": 2, "duration": 2,
                                                "stream": [{"resolution": 144}]}, source="city_cc0_720x405_mpeg2.mpg")
    text = plan.main.read_text()
    assert "AUDIO=" not in text and 'CODECS="avc1.' in text and ",mp4a" not in text
    assert [d.kind for d in described] == ["manifest", "video"]


# --- DASH: one display aspect ratio per ladder; the MPD's duration; A/V start of every rendition ------------


def _dash_video_aspects(wd: Path, described) -> list[tuple[int, int, str, str]]:
    out = []
    for d in described:
        if d.kind != "video":
            continue
        init = d.files[0]
        k = init.stem.split("-")[1]
        joined = wd / f".joined-{k}{init.suffix}"
        joined.write_bytes(init.read_bytes() + sorted(wd.glob(f"chunk-{k}-*{init.suffix}"))[0].read_bytes())
        v = next(s for s in probing.probe(joined)["streams"] if s["codec_type"] == "video")
        out.append((v["width"], v["height"], v["display_aspect_ratio"], v["sample_aspect_ratio"]))
        joined.unlink()
    return out


@pytest.mark.parametrize("output", ["advanced_dash", "webm_dash"])
def test_dash_rungs_whose_rounded_sides_differ_share_the_display_aspect(tmp_path, media, output):
    """426x240 beside 256x144 (16:9 rounded to even sides): FFmpeg's dash muxer refused these ("Conflicting
    stream aspect ratios"); every rung now carries the source's 16:9 and a SAR that absorbs the rounding."""
    plan, described, wd = make(tmp_path, media, {
        "output": output, "segment_duration": 1, "duration": 2, "video_codec_parameters": FAST,
        "stream": [{"resolution": 240}, {"resolution": 144}]})
    # WebM stores a display size in whole pixels (427x240), MP4 the SAR itself
    top = ("16:9", "640:639") if output == "advanced_dash" else ("427:240", "427:426")
    assert _dash_video_aspects(wd, described) == [(426, 240, *top), (256, 144, "16:9", "1:1")]
    mpd = plan.main.read_text()
    assert 'par="16:9"' in mpd and 'sar="640:639"' in mpd  # the MPD says what the muxer was given


def test_dash_ladder_from_a_239_to_1_source(tmp_path, media):
    """A 1280x536 picture (2.39:1, cropped from the real trailer): 574x240 and 344x144, one DAR 160:67."""
    import imageio_ffmpeg
    import subprocess

    source = tmp_path / "scope.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(media / SOURCE), "-t", "2",
                    "-vf", "crop=1280:536", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "copy", str(source)],
                   check=True)
    plan, described, wd = make(tmp_path, source.parent, {
        "output": "advanced_dash", "segment_duration": 1, "video_codec_parameters": FAST,
        "stream": [{"resolution": 240}, {"resolution": 144}]}, source=source.name)
    aspects = _dash_video_aspects(wd, described)
    assert [(w, h, dar) for w, h, dar, _ in aspects] == [(574, 240, "160:67"), (344, 144, "160:67")]
    assert 'par="160:67"' in plan.main.read_text()


def test_dash_rungs_of_different_shapes_are_refused_by_field(tmp_path, media):
    with pytest.raises(QueryError) as err:
        make(tmp_path, media, {"output": "advanced_dash", "duration": 1,
                               "stream": [{"size": "640x360"}, {"size": "480x360"}]})
    assert err.value.field == "format[0].stream[1].size" and "480x360" in err.value.message
    with pytest.raises(QueryError) as err:
        make(tmp_path / "b", media, {"output": "webm_dash", "duration": 1,
                                     "stream": [{"resolution": 240}, {"resolution": 144, "aspect_ratio": "4:3"}]})
    assert err.value.field == "format[0].stream[1].aspect_ratio"


def _media_end(wd: Path, init: Path) -> float:
    """Where a DASH representation's media end: its last segment's last sample."""
    k = init.stem.split("-")[1]
    last = sorted(wd.glob(f"chunk-{k}-*{init.suffix}"))[-1]
    if init.suffix == ".webm":
        joined = wd / f".end-{k}.webm"
        joined.write_bytes(init.read_bytes() + last.read_bytes())
        with av.open(str(joined)) as c:
            s = c.streams[0]
            end = max(float((p.pts + p.duration) * s.time_base) for p in c.demux(s) if p.pts is not None)
        joined.unlink()
        return end
    t = bmff.track(init)
    return max(c + d for _, c, d in bmff.samples(last, t.timescale)) + t.shift


@pytest.mark.parametrize("output", ["webm_dash", "advanced_dash"])
def test_mpd_duration_is_where_the_media_end(tmp_path, media, output):
    """FFmpeg cut mediaPresentationDuration to a tenth of a second (PT5.2S for media ending at 5.28/5.31 s)."""
    plan, described, wd = make(tmp_path, media, {
        "output": output, "segment_duration": 2, "video_codec_parameters": FAST, "stream": [{"resolution": 144}]})
    said = float(re.search(r'mediaPresentationDuration="PT([\d.]+)S"', plan.main.read_text()).group(1))
    ends = [_media_end(wd, d.files[0]) for d in described[1:]]
    assert ends[0] == pytest.approx(5.28, abs=0.02), ends  # the video
    for end in ends:
        assert abs(said - end) < 1 / 25, (said, ends)


START_KINDS = [
    pytest.param({"output": "advanced_hls"}, id="hls-ts"),
    pytest.param({"output": "advanced_hls", "fmp4": 1}, id="hls-fmp4"),
    pytest.param({"output": "advanced_dash"}, id="dash"),
    pytest.param({"output": "advanced_dash", "create_m3u8_playlist": 1}, id="cmaf"),
]


@pytest.mark.parametrize("fmt", START_KINDS)
def test_audio_and_video_of_every_rendition_start_within_a_frame(tmp_path, media, fmt):
    """Every rendition (B-frames on, AAC priming) starts within one frame of every other, whether the player
    applies edit lists or not; no video track carries an edit list that skips media (its first frame is shown at
    its decode time), and the audio's skips no more than its encoder priming."""
    plan, described, wd = make(tmp_path, media, {
        **fmt, "segment_duration": 1, "duration": 2, "video_codec_parameters": FAST,
        "stream": [{"resolution": 240}, {"resolution": 144}]})
    frame = 1 / 25
    raw, shown = {}, {}
    for d in described[1:]:
        name = f"{d.kind}-{d.stream_index}"
        if fmt["output"] == "advanced_hls" and not fmt.get("fmp4"):
            first = media_playlist(d.files[0])[0][1]
            raw[name] = shown[name] = min(t for t, _ in packets(first, d.kind))
            continue
        init = next(f for f in d.files if f.suffix in (".mp4", ".m4s"))
        if fmt["output"] == "advanced_hls":
            first = media_playlist(d.files[0])[0][1]
        else:
            first = sorted(wd.glob(f"chunk-{init.stem.split('-')[1]}-*.m4s"))[0]
        track = bmff.track(init)
        raw[name], shown[name] = bmff.first_presentation(init, first)
        if d.kind == "video":
            decode = bmff.samples(first, track.timescale)[0][0]
            assert raw[name] == decode, (name, decode, raw[name])
            assert all(media_time in (-1, 0) for _, media_time in track.edits), (name, track.edits)
        else:
            assert all(media_time <= 1024 for _, media_time in track.edits), (name, track.edits)
    assert len(raw) == 3, raw  # two video renditions and the audio
    for starts in (raw, shown):
        assert max(starts.values()) - min(starts.values()) < frame, (raw, shown)


@pytest.mark.parametrize("cpus, expected", [
    pytest.param(2, [2, 1, 1, 1], id="2-cores"),
    pytest.param(8, [7, 3, 1, 1], id="8-cores"),
    pytest.param(1, [1, 1, 1, 1], id="1-core-at-least-one-each"),
])
def test_rung_threads_share_one_and_a_half_threads_per_core_by_area(cpus, expected):
    areas = [1920 * 1080, 1280 * 720, 854 * 480, 640 * 360]
    assert rung_threads(areas, cpus) == expected


@pytest.mark.parametrize("cpu_max, affinity, expected", [
    pytest.param("max 100000", 8, 8, id="no-quota-affinity-counts"),
    pytest.param("200000 100000", 8, 2, id="quota-of-2-cores-caps-8"),
    pytest.param("150000 100000", 8, 2, id="a-fraction-rounds-up"),
    pytest.param("50000 100000", 8, 1, id="half-a-core-is-one"),
    pytest.param("800000 100000", 3, 3, id="affinity-below-quota"),
    pytest.param(None, 4, 4, id="no-cgroup-file"),
    pytest.param("garbage", 4, 4, id="unreadable-quota-ignored"),
])
def test_usable_cpus_follow_affinity_and_the_cgroup_quota(tmp_path, monkeypatch, cpu_max, affinity, expected):
    monkeypatch.setattr("vidmill.engine.streaming.os.sched_getaffinity", lambda pid: set(range(affinity)))
    if cpu_max is not None:
        (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    assert usable_cpus(tmp_path) == expected


def test_each_x264_rung_of_a_ladder_gets_its_own_thread_count(tmp_path, media, monkeypatch):
    monkeypatch.setattr("vidmill.engine.streaming.usable_cpus", lambda: 2)
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

"""Every adaptive-streaming output vidmill makes, played to its end by real web players.

One task (through the real server and Qencode's SDK) makes each output kind from the same 5.3 s source;
each is then played from vidmill's own ``/files/`` URLs by hls.js, dash.js and Shaka Player in headless
Chromium, from a page on another origin, with forced switches through every rung. HEVC, which Chromium
cannot play, is checked by decoding every segment and by its ``hvc1`` tag in CODECS.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from pathlib import Path

import av
import httpx
import pytest
from qencode3.client import Client

from tests.integration.helpers import wait_task
from tests.players.servers import MediaServer
from tests.servers import VidmillServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SOURCE = "bbb_720p_5s_aac51.mp4"  # 1280x720 25 fps, 5.28 s, AAC 5.1
SEG = 1  # 1 s segments: switches every 2 s reach the screen within the short clip
FAST = {"preset": "veryfast"}
LADDER = [{"resolution": 360}, {"resolution": 180}]
SMALL = [{"resolution": 288}, {"resolution": 144}]  # VP9 and x265 are the slow encoders: smaller rungs

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
# user tag -> format; each user tag names one output kind in the status
FORMATS = {
    "hls_ts": {"output": "advanced_hls"},
    "hls_fmp4": {"output": "advanced_hls", "fmp4": 1, "i_frames_only": 1},
    "hls_muxed": {"output": "advanced_hls", "separate_audio": 0, "single_folder": 1},
    "dash": {"output": "advanced_dash"},
    # 426x240 beside 256x144: sides rounded to even give two aspect ratios unless every rung carries the source's
    "dash_rounded": {"output": "advanced_dash", "stream": [{"resolution": 240}, {"resolution": 144}]},
    "cmaf": {"output": "advanced_dash", "create_m3u8_playlist": 1},
    "webm_dash": {"output": "webm_dash", "stream": SMALL},
    "aes128": {"output": "advanced_hls", "encryption": {"key": "00112233445566778899aabbccddeeff"}},
    "aes128_fmp4": {"output": "advanced_hls", "fmp4": 1, "encryption": {"key": KEY}},
    "hls_audio": {"output": "hls_audio", "stream": [{"audio_bitrate": 96}, {"audio_bitrate": 48}]},
    "hevc": {"output": "advanced_hls", "fmp4": 1,
             "stream": [{**SMALL[0], "video_codec": "libx265"}, SMALL[1]]},
    "dash_hevc": {"output": "advanced_dash", "stream": [{**SMALL[0], "video_codec": "libx265"}, SMALL[1]]},
}


@pytest.fixture(scope="module")
def outputs(media, tmp_path_factory):
    """Run the task once; yield {user tag: status entry}, the server and the folder its files live in."""
    root = tmp_path_factory.mktemp("play-src")
    (root / SOURCE).symlink_to(media / SOURCE)
    with MediaServer(root) as origin, VidmillServer(tmp_path_factory.mktemp("vidmill-play")) as server:
        client = Client(server.api_key, api_url=server.url + "/")
        task = client.create_task()
        formats = []
        for tag, fmt in FORMATS.items():
            fmt = {"segment_duration": SEG, "stream": LADDER, **fmt, "tag": tag}
            if fmt["output"] != "webm_dash" and fmt["output"] != "hls_audio":
                fmt["video_codec_parameters"] = FAST
            formats.append(fmt)
        task.custom_start({"query": {"source": f"{origin.url}/{SOURCE}", "format": formats}})
        assert not task.error, task.message
        status = wait_task(task, timeout=240)
        failed = [(e["user_tag"], e["error_description"]) for e in status["videos"] + status["audios"] if e["error"]]
        assert status["status"] == "completed", (status["error_description"], failed)
        entries = {e["user_tag"]: e for e in status["videos"] + status["audios"]}
        assert set(entries) == set(FORMATS), entries.keys()
        yield entries, server


PLAYS = [
    ("hls_ts", "url", "hls"), ("hls_ts", "url", "shaka"),
    ("hls_fmp4", "url", "hls"), ("hls_fmp4", "url", "shaka"),
    ("hls_muxed", "url", "hls"), ("hls_muxed", "url", "shaka"),
    ("dash", "url", "dash"), ("dash", "url", "shaka"),
    ("dash_rounded", "url", "dash"), ("dash_rounded", "url", "shaka"),
    ("cmaf", "url", "dash"), ("cmaf", "url", "shaka"),
    ("cmaf", "playlist.m3u8", "hls"), ("cmaf", "playlist.m3u8", "shaka"),
    ("webm_dash", "url", "dash"), ("webm_dash", "url", "shaka"),
    ("aes128", "url", "hls"), ("aes128", "url", "shaka"),
    ("aes128_fmp4", "url", "hls"), ("aes128_fmp4", "url", "shaka"),
]


def _manifest(entry: dict, which: str) -> str:
    return entry["url"] if which == "url" else entry["url"].rsplit("/", 1)[0] + "/" + which


@pytest.mark.parametrize("tag,which,player", PLAYS, ids=[f"{t}-{w.replace('.m3u8', '')}-{p}" for t, w, p in PLAYS])
def test_output_plays_to_the_end(players, outputs, tag, which, player):
    entries, server = outputs
    url = _manifest(entries[tag], which)
    assert url.startswith(server.url + "/files/") and server.port != players.origin.port  # another origin
    v = players.play(player, url, switch_every=2 * SEG)
    assert v.ok, v.summary()
    assert 5.0 < v.duration < 5.6, v.summary()
    assert v.current_time >= v.duration - 0.1, v.summary()  # and v.ok: no hole over 0.25 s anywhere
    heights = sorted(s["resolution"] for s in (FORMATS[tag].get("stream") or LADDER))
    assert sorted({lv["height"] for lv in v.levels}) == heights, v.levels
    assert sorted(v.heights) == heights, f"every rung should have reached the screen: {v.summary()}"
    assert v.decoded_enough(fps=25), v.summary()


@pytest.mark.parametrize("player", ["hls", "shaka"])
def test_audio_only_hls_plays_to_the_end(players, outputs, player):
    entries, _ = outputs
    v = players.play(player, entries["hls_audio"]["url"], switch_every=2 * SEG)
    assert v.ok, v.summary()
    assert 5.0 < v.duration < 5.6 and v.current_time >= v.duration - 0.1, v.summary()
    assert len(v.levels) == 2 and v.heights == [], v.summary()


@pytest.mark.parametrize("tag,player", [("hevc", "hls"), ("hevc", "shaka"), ("dash_hevc", "dash"),
                                        ("dash_hevc", "shaka")])
def test_ladder_with_a_hevc_rung_plays_its_h264_rung(players, outputs, tag, player):
    """Chromium has no HEVC: the players must pass over the hvc1 variant (by its CODECS; in DASH its own
    AdaptationSet) and play the other."""
    entries, _ = outputs
    v = players.play(player, entries[tag]["url"], switch_every=0)
    assert v.ok, v.summary()
    assert v.heights == [144] and v.current_time >= v.duration - 0.1, v.summary()


def _attrs(line: str) -> dict:
    return {k: v.strip('"') for k, v in re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])}


def test_hevc_rung_decodes_segment_by_segment_with_hvc1(outputs, tmp_path):
    entries, _ = outputs
    master_url = entries["hevc"]["url"]
    base = master_url.rsplit("/", 1)[0]
    lines = httpx.get(master_url).text.splitlines()
    variants = [(_attrs(line), lines[i + 1]) for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF:")]
    hevc = [(a, uri) for a, uri in variants if a["CODECS"].startswith("hvc1.")]
    assert len(hevc) == 1 and hevc[0][0]["RESOLUTION"].endswith("x288"), variants
    assert any(a["CODECS"].startswith("avc1.") for a, _ in variants)
    chunk_url = f"{base}/{hevc[0][1]}"
    chunk_base = chunk_url.rsplit("/", 1)[0]
    chunklist = httpx.get(chunk_url).text
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', chunklist).group(1)
    init_bytes = httpx.get(f"{chunk_base}/{init}").content
    segments = [ln for ln in chunklist.splitlines() if ln and not ln.startswith("#")]
    durations = [float(x) for x in re.findall(r"#EXTINF:([\d.]+)", chunklist)]
    assert len(segments) == len(durations) >= 5
    total = 0
    for name, duration in zip(segments, durations):
        piece = tmp_path / "piece.mp4"
        piece.write_bytes(init_bytes + httpx.get(f"{chunk_base}/{name}").content)
        with av.open(str(piece)) as c:
            stream = c.streams.video[0]
            assert stream.codec_context.name == "hevc" and stream.codec_context.codec_tag == "hvc1"
            frames = list(c.decode(video=0))
        assert frames[0].key_frame, f"{name} does not start with a keyframe"
        assert all(f.height == 288 for f in frames)
        assert abs(len(frames) - duration * 25) <= 1, (name, len(frames), duration)
        total += len(frames)
    assert abs(total - 5.28 * 25) <= 2, total


def _mirror(master_url: str, root: Path) -> list[Path]:
    """Fetch an HLS output as served (master, media playlists, key, init and media segments) into ``root``."""
    base = master_url.rsplit("/", 1)[0]
    got = []

    def fetch(rel: str) -> Path:
        path = Path(root, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        response = httpx.get(f"{base}/{rel}")
        assert response.status_code == 200, (rel, response.status_code)
        path.write_bytes(response.content)
        got.append(path)
        return path

    master = fetch(master_url.rsplit("/", 1)[1])
    for line in master.read_text().splitlines():
        uris = re.findall(r'URI="([^"]+)"', line) if line.startswith("#") else [line] if line else []
        for uri in uris:
            playlist = fetch(uri)
            folder = uri.rsplit("/", 1)[0] + "/" if "/" in uri else ""
            for entry in playlist.read_text().splitlines():
                refs = re.findall(r'URI="([^"]+)"', entry) if entry.startswith("#") else [entry] if entry else []
                for ref in refs:
                    rel = posixpath.normpath(folder + ref)  # "video_1/../encryption.key" -> "encryption.key"
                    assert not rel.startswith(".."), ref
                    if not Path(root, rel).exists():
                        fetch(rel)
    return got


def _openssl_clear(path: Path, iv: str) -> bytes:
    """AES-128-CBC undone by OpenSSL's command line, which shares no code with vidmill or the players."""
    return subprocess.run(["openssl", "enc", "-d", "-aes-128-cbc", "-K", KEY, "-iv", iv, "-in", str(path)],
                          check=True, capture_output=True).stdout


def test_aes128_fmp4_segments_decode_with_the_served_key(outputs, tmp_path):
    """The served key opens the served init segment and every media segment (OpenSSL), and PyAV decodes each."""
    entries, _ = outputs
    files = _mirror(entries["aes128_fmp4"]["url"], tmp_path)
    key = (tmp_path / "encryption.key").read_bytes()
    assert key.hex() == KEY
    playlists = [f for f in files if f.name == "chunklist.m3u8"]
    assert len(playlists) == 3  # two video rungs and the audio rendition
    for chunklist in playlists:
        text = chunklist.read_text()
        found = re.search(r'#EXT-X-KEY:METHOD=AES-128,URI="\.\./encryption\.key",IV=0x([0-9a-f]{32})\n#EXT-X-MAP:',
                          text)
        assert found, text
        iv = found.group(1)
        init = _openssl_clear(chunklist.parent / "init.mp4", iv)
        names = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        assert len(names) >= 5
        for name in names:
            piece = tmp_path / "piece.mp4"
            piece.write_bytes(init + _openssl_clear(chunklist.parent / name, iv))
            with av.open(str(piece)) as c:
                if c.streams.video:
                    frames = list(c.decode(video=0))
                    assert frames and frames[0].key_frame, name
                else:
                    assert sum(f.samples for f in c.decode(audio=0)) > 0, name


@pytest.mark.parametrize("tag,player", [("aes128_fmp4", "hls"), ("aes128_fmp4", "shaka"), ("aes128", "hls")])
def test_a_garbled_key_makes_the_play_fail(players, outputs, tmp_path, tag, player):
    """The same output with its key file's bytes reversed, served from another origin: no player may pass it."""
    entries, _ = outputs
    _mirror(entries[tag]["url"], tmp_path / tag)
    key = tmp_path / tag / "encryption.key"
    key.write_bytes(key.read_bytes()[::-1])
    with MediaServer(tmp_path) as server:
        v = players.play(player, f"{server.url}/{tag}/{entries[tag]['url'].rsplit('/', 1)[1]}", switch_every=2 * SEG)
    print(v.summary())
    assert not v.ok, f"a garbled key went unnoticed: {v.summary()}"
    assert v.outcome in ("media-error", "player-error"), v.summary()


def test_status_links_each_dash_rendition_to_what_plays_it(outputs):
    """streams[].url: with CMAF each rendition's own HLS playlist, in plain DASH the MPD (never an init segment)."""
    entries, _ = outputs
    cmaf = entries["cmaf"]
    urls = [s["url"] for s in cmaf["streams"]]
    assert urls and all(u.rsplit("/", 1)[1].startswith("media_") and u.endswith(".m3u8") for u in urls), urls
    for url in urls:
        r = httpx.get(url)
        assert r.status_code == 200 and r.text.startswith("#EXTM3U") and "#EXTINF" in r.text
    assert httpx.get(_manifest(cmaf, "playlist.m3u8")).text.count("#EXT-X-STREAM-INF") == len(LADDER)
    dash = entries["dash"]
    assert {s["url"] for s in dash["streams"]} == {dash["url"]}, dash["streams"]

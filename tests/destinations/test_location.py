"""Destination URLs: parsed once, keys never escape their prefix, credentials never in the public form."""

from __future__ import annotations

import pytest

from vidmill.destinations import OutputFile, Target, content_type, put, upload_order
from vidmill.destinations.location import check_path, key_for, parse
from vidmill.destinations.retry import RetryPolicy, with_retries
from vidmill.errors import StorageError


def test_file_and_folder_urls():
    loc = parse("s3://s3.example.com:9000/bucket/out/video.mp4")
    assert (loc.scheme, loc.host, loc.port, loc.path, loc.folder) == ("s3", "s3.example.com", 9000, "bucket/out/video.mp4",
                                                                      False)
    assert key_for(loc, "video.mp4", many=False) == "bucket/out/video.mp4"
    folder = parse("s3://s3.example.com/bucket/hls/")
    assert folder.folder and folder.path == "bucket/hls"
    assert key_for(folder, "720p/seg_001.ts", many=True) == "bucket/hls/720p/seg_001.ts"
    # a many-file output under a URL without the trailing slash still goes under it as a folder
    assert key_for(parse("ftp://h/out/hls"), "master.m3u8", many=True) == "out/hls/master.m3u8"


def test_credentials_in_the_url_never_in_its_public_form():
    loc = parse("ftp://user:p%40ss@ftp.example.com:2121/out/a%20b.mp4")
    assert (loc.username, loc.password, loc.path) == ("user", "p@ss", "out/a b.mp4")
    assert loc.url_for(loc.path) == "ftp://ftp.example.com:2121/out/a%20b.mp4"
    assert "p@ss" not in repr(loc) and "user" not in repr(loc)
    assert "sekrit" not in repr(Target(url="s3://h/b/k", key="AKIA", secret="sekrit"))


@pytest.mark.parametrize("url", [
    pytest.param("s3://h/bucket/../other/x.mp4", id="dotdot"),
    pytest.param("s3://h/bucket/%2e%2e/other/x.mp4", id="encoded-dotdot"),
    pytest.param("s3://h/bucket/%2E%2E%2Fother/x.mp4", id="encoded-dotdot-slash"),
    pytest.param("s3://h/bucket/%252e%252e/x.mp4", id="double-encoded"),
    pytest.param("s3://h/bucket/a%5c..%5cb.mp4", id="encoded-backslash"),
    pytest.param("s3://h//etc/passwd", id="absolute"),
    pytest.param("s3://h/bucket/./x.mp4", id="dot"),
    pytest.param("s3://h/bucket//x.mp4", id="empty-segment"),
    pytest.param("s3://h/bucket/a%00b.mp4", id="nul"),
    pytest.param("s3://h/bucket/x.mp4?acl=public", id="query"),
])
def test_keys_never_escape_their_prefix(url):
    with pytest.raises(StorageError, match="refused|query|single"):
        parse(url)


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/abs", "a\\b", "", "a//b", "%2e%2e/x"])
def test_file_names_are_checked_too(name):
    with pytest.raises(StorageError):
        check_path(name)


def test_put_refuses_duplicate_names_and_unknown_schemes(tmp_path):
    f = tmp_path / "a.mp4"
    f.write_bytes(b"x")
    with pytest.raises(StorageError, match="same name"):
        put([OutputFile("a.mp4", f), OutputFile("a.mp4", f)], Target(url="s3://h/b/"), settings=None)
    with pytest.raises(StorageError, match="not supported"):
        put([OutputFile("a.mp4", f)], Target(url="gopher://h/b/"), settings=None)


def test_content_types_and_playlists_last(tmp_path):
    assert content_type("master.m3u8") == "application/vnd.apple.mpegurl"
    assert content_type("manifest.mpd") == "application/dash+xml"
    assert content_type("seg_1.ts") == "video/mp2t"
    assert content_type("v.mp4") == "video/mp4"
    texts = {"master.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n",
             "720p/a.ts": "", "720p/index.m3u8": "#EXTM3U\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n", "b.ts": "",
             "manifest.mpd": "<MPD/>", "media_0.m3u8": "#EXTM3U\n#EXTINF:4,\nb.ts\n",
             "audio.m3u8": '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="a",URI="media_0.m3u8"\n'}
    files = []
    for name, text in texts.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
        files.append(OutputFile(name, tmp_path / name))
    ordered = [f.name for f, _ in upload_order([(f, f.name) for f in files])]
    # segments, then the media playlists naming them, then the masters naming those (the main file came first)
    assert ordered == ["720p/a.ts", "b.ts", "720p/index.m3u8", "media_0.m3u8", "master.m3u8", "manifest.mpd",
                       "audio.m3u8"]


def test_retry_policy_is_pure_and_bounded():
    policy = RetryPolicy(max_attempts=3, base=1.0, cap=3.0)
    assert policy.next_delay(1, True, rand=lambda: 1.0) == 1.0
    assert policy.next_delay(2, True, rand=lambda: 1.0) == 2.0
    assert policy.next_delay(3, True) is None
    assert policy.next_delay(1, False) is None
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("reset")
        return "ok"

    fast = RetryPolicy(max_attempts=3, base=0.001, cap=0.001)
    assert with_retries(flaky, policy=fast, is_transient=lambda e: isinstance(e, OSError)) == "ok"
    assert len(calls) == 3
    with pytest.raises(ValueError):
        with_retries(lambda: (_ for _ in ()).throw(ValueError("final")), policy=fast, is_transient=lambda e: False)

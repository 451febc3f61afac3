"""vidmill's own storage served over HTTP: ranges, CORS, and conditional requests (RFC 9110)."""

from __future__ import annotations

import pytest


@pytest.fixture
def served(rt, client):
    folder = rt.settings.files_dir / "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    (folder / "video_1").mkdir(parents=True)
    data = bytes(range(256)) * 40
    (folder / "video_1" / "segment_00000.ts").write_bytes(data)
    return "/files/AbCdEfGhIjKlMnOpQrStUvWxYz012345/video_1/segment_00000.ts", data


def test_byte_ranges_and_cors(client, served):
    url, data = served
    r = client.get(url, headers={"Range": "bytes=10-19", "Origin": "https://player.example"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}" and r.headers["content-type"] == "video/mp2t"
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("unit", ["items=0-1", "seconds=0-2"])
def test_a_range_in_another_unit_is_ignored(client, served, unit):
    """RFC 9110 §14.2: an origin server MUST ignore a Range field with a unit it does not understand."""
    url, data = served
    r = client.get(url, headers={"Range": unit})
    assert r.status_code == 200 and r.content == data


def test_conditional_requests_answer_not_modified(client, served):
    url, data = served
    first = client.get(url, headers={"Origin": "https://player.example"})
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"nope", W/{etag}'}, {"If-None-Match": "*"},
                    {"If-Modified-Since": modified}):
        r = client.get(url, headers={**headers, "Origin": "https://player.example"})
        assert r.status_code == 304 and r.content == b"", headers
        assert r.headers["etag"] == etag and r.headers["access-control-allow-origin"] == "*"
    for headers in ({"If-None-Match": '"other"'}, {"If-Modified-Since": "Thu, 01 Jan 1998 00:00:00 GMT"},
                    {"If-Modified-Since": "not a date"},
                    {"If-None-Match": '"other"', "If-Modified-Since": modified}):  # If-None-Match decides
        r = client.get(url, headers=headers)
        assert r.status_code == 200 and r.content == data, headers
    assert client.head(url, headers={"If-None-Match": etag}).status_code == 304


def test_nothing_outside_the_files_folder(client, served, rt):
    (rt.settings.data_dir / "secret.txt").write_text("no")
    for path in ("/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/AbCdEfGhIjKlMnOpQrStUvWxYz012345"):
        assert client.get(path).status_code == 404, path

"""Malformed and hostile requests: each gets a clean Qencode-style error and the server keeps serving."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def session(api, server):
    r = api.post("/v1/access_token", data={"api_key": server.api_key}).json()
    assert r["error"] == 0
    return r["token"]


def _task(api, session) -> str:
    r = api.post("/v1/create_task", data={"token": session}).json()
    assert r["error"] == 0
    return r["task_token"]


def _start(api, token, query, **extra):
    data = {"task_token": token, "query": query if isinstance(query, str) else json.dumps(query), **extra}
    return api.post("/v1/start_encode2", data=data)


def _good(origin, **fmt):
    return {"query": {"source": f"{origin.url}/carphone_qcif_sar.mp4", "format": [{"output": "mp4", **fmt}]}}


def test_access_token_shape(api, server):
    r = api.post("/v1/access_token", data={"api_key": server.api_key})
    assert r.status_code == 200
    body = r.json()
    assert body["error"] == 0 and len(body["token"]) == 32
    assert len(body["expire"]) == 19 and "T" in body["expire"]


@pytest.mark.parametrize("data,code", [
    pytest.param({}, 14, id="no-api-key"),
    pytest.param({"api_key": "x y"}, 2, id="malformed-key"),
    pytest.param({"api_key": "0123456789abcdef0123"}, 3, id="unknown-key"),
])
def test_access_token_errors(api, data, code):
    r = api.post("/v1/access_token", data=data)
    assert r.status_code == 200 and r.json()["error"] == code


@pytest.mark.parametrize("token,code,message", [
    pytest.param("", 14, None, id="missing"),
    pytest.param("zz", 4, None, id="malformed"),
    pytest.param("0" * 32, 5, "Token not found", id="unknown"),
])
def test_create_task_token_errors(api, token, code, message):
    body = api.post("/v1/create_task", data={"token": token}).json()
    assert body["error"] == code
    if message:
        assert body["message"] == message


def test_double_slash_paths_are_served(api, session, server):
    # a full URL: httpx would read a bare "//v1/..." as a host name
    body = httpx.post(f"{server.url}//v1/create_task", data={"token": session}).json()
    assert body["error"] == 0


@pytest.mark.parametrize("query,code,needle", [
    pytest.param("", 19, "query", id="missing-query"),
    pytest.param('{"source": "x", "format": []}', 19, "query", id="no-wrapper"),
    pytest.param("{not json", 14, "json", id="broken-json"),
    pytest.param('{"query": {"format": [{"output": "mp4"}]}}', 14, "source", id="no-source"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4"}}', 14, "format", id="no-format"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4", "size": "99999x99999"}]}}',
                 14, "size", id="absurd-size"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4", "start_time": NaN}]}}',
                 14, "", id="nan-time"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4", "duration": "Infinity"}]}}',
                 14, "duration", id="infinite-duration"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4", "size": "320x240 -i /etc/passwd"}]}}',
                 14, "size", id="inject-size"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4", "video_codec": "libx264 -f"}]}}',
                 14, "video_codec", id="inject-codec"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4", "framerate": "30;rm -rf /"}]}}',
                 14, "framerate", id="inject-framerate"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4", "video_codec_parameters": {"preset": "-y"}}]}}',
                 14, "preset", id="inject-preset"),
    pytest.param('{"query": {"source": "-i /etc/passwd", "format": [{"output": "mp4"}]}}', 14, "source", id="inject-source"),
    pytest.param('{"query": {"source": "file:///etc/passwd", "format": [{"output": "mp4"}]}}', 14, "source", id="file-scheme"),
    pytest.param('{"query": {"source": "http://169.254.169.254/latest/meta-data/", "format": [{"output": "mp4"}]}}',
                 14, "source", id="metadata-address"),
    pytest.param('{"query": {"source": "http://[::ffff:169.254.169.254]/", "format": [{"output": "mp4"}]}}',
                 14, "source", id="metadata-address-v6"),
    pytest.param('{"query": {"source": "http://93.184.216.34/a.mp4", "callback_url": "http://169.254.169.254/", "format": [{"output": "mp4"}]}}',
                 14, "callback_url", id="metadata-callback"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "gif"}]}}',
                 14, "gif", id="unsupported-output"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4", "video_codec": "lcevc_h264"}]}}',
                 14, "lcevc", id="lcevc-refused"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4", "destination": {"url": "gs://b/k.mp4"}}]}}',
                 14, "destination", id="unsupported-destination"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4", "bogus_field": 1}]}}',
                 14, "bogus_field", id="unknown-field"),
    pytest.param('{"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4"}], "x": '
                 + "[" * 200 + "]" * 200 + "}}", 14, "", id="deeply-nested"),
])
def test_start_encode2_query_errors(api, session, query, code, needle):
    token = _task(api, session)
    r = _start(api, token, query)
    assert r.status_code == 200
    body = r.json()
    assert body["error"] == code, body
    assert needle.lower() in body["message"].lower(), body
    # a refused start does not burn the token: a good query still starts it afterwards
    assert api.post("/v1/status", data={"task_tokens": token}).json()["error"] == 0


def test_payload_too_long(api, session, origin):
    token = _task(api, session)
    assert _start(api, token, _good(origin), payload="x" * 1001).json()["error"] == 9


def test_task_token_used_twice(api, session, origin):
    token = _task(api, session)
    assert _start(api, token, _good(origin, duration=0.5)).json()["error"] == 0
    second = _start(api, token, _good(origin, duration=0.5)).json()
    assert second["error"] == 4 and "already" in second["message"]


@pytest.mark.parametrize("token,code", [
    pytest.param("", 14, id="missing"), pytest.param("nothex", 4, id="malformed"),
    pytest.param("f" * 32, 5, id="unknown")])
def test_start_encode2_task_token_errors(api, origin, token, code):
    assert _start(api, token, _good(origin)).json()["error"] == code


def test_oversized_body_is_refused(api):
    r = api.post("/v1/start_encode2", content=b"query=" + b"a" * (3 * 1024 * 1024),
                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json()["error"] != 0
    assert "too large" in r.json()["message"]


def test_huge_json_is_refused_by_the_query_guard(api, session):
    token = _task(api, session)
    big = json.dumps({"query": {"source": "https://example.com/a.mp4",
                                "format": [{"output": "mp4", "tag": "a" * (1100 * 1024)}]}})
    assert len(big) < 2 * 1024 * 1024  # under the body limit: this is the JSON guard speaking
    body = _start(api, token, big).json()
    assert body == {"error": 14, "message": "query: must be at most 1048576 bytes"}


def test_too_many_formats_is_refused(api, session):
    token = _task(api, session)
    many = json.dumps({"query": {"source": "https://example.com/a.mp4", "format": [{"output": "mp4"}] * 51}})
    body = _start(api, token, many).json()
    assert body["error"] == 14 and "format" in body["message"], body


@pytest.mark.parametrize("data", [
    pytest.param({}, id="none"), pytest.param({"task_tokens": "nope,also-nope"}, id="malformed"),
    pytest.param({"task_tokens[]": ""}, id="empty-php-style")])
def test_status_needs_tokens(api, data):
    assert api.post("/v1/status", data=data).json()["error"] == 13


def test_status_many_tokens_and_unknown_ones(api, session):
    a, b = _task(api, session), _task(api, session)
    body = api.post("/v1/status", data={"task_tokens": f"{a}, {b},{'e' * 32}"}).json()
    assert body["error"] == 0 and set(body["statuses"]) == {a, b}
    php = api.post("/v1/status", data={"task_tokens[]": a}).json()
    assert set(php["statuses"]) == {a}
    item = php["statuses"][a]
    assert isinstance(item["error"], int) and isinstance(item["percent"], float | int)
    for key in ("status", "status_url", "warnings", "videos", "audios", "images", "texts", "error_description"):
        assert key in item
    assert item["status_url"].startswith("http://127.0.0.1:")


def test_binary_garbage_and_wrong_methods(api):
    r = api.post("/v1/start_encode2", content=bytes(range(256)) * 10,
                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json()["error"] != 0
    assert api.post("/v1/nosuchmethod", data={}).status_code == 404


def test_file_urls_are_confined(server):
    # sent raw: httpx would normalise the dot segments away before they reach the server
    import http.client

    port = int(server.url.rsplit(":", 1)[1])
    for path in ["/files/../vidmill.db", "/files/%2e%2e/vidmill.db", "/files/..%2fvidmill.db",
                 "/files/x/../../vidmill.db", "/files/%2e%2e%2fvidmill.db", "/files//etc/passwd",
                 "/files/" + "a" * 300, "/files/x/" + "b" * 5000, "/files/%00", "/files/%ff%fe"]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for method in ("GET", "HEAD"):
            conn.request(method, path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 404 and b"SQLite" not in body and b"root:" not in body, (method, path)
            assert method == "HEAD" or resp.getheader("content-type") == "application/json", path
        conn.close()


def test_multipart_posts_work(api, server):
    r = api.post("/v1/access_token", files={"api_key": (None, server.api_key)})
    assert r.json()["error"] == 0, r.json()
    r = api.post("/v1/create_task", files={"token": (None, r.json()["token"])})
    assert r.json()["error"] == 0 and len(r.json()["task_token"]) == 32


def test_status_repeated_and_numbered_token_fields(api, session):
    a, b, c = _task(api, session), _task(api, session), _task(api, session)
    body = api.post("/v1/status", content=f"task_tokens[]={a}&task_tokens[]={b}".encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"}).json()
    assert set(body["statuses"]) == {a, b}
    body = api.post("/v1/status", data={"task_tokens[0]": a, "task_tokens[1]": f"{b},{c}"}).json()
    assert set(body["statuses"]) == {a, b, c}


def test_unknown_profile_is_12_whatever_its_name(api, session, origin):
    token = _task(api, session)
    body = api.post("/v1/start_encode", data={"task_token": token, "profiles": "task1",
                                              "uri": f"{origin.url}/carphone_qcif_sar.mp4"}).json()
    assert body["error"] == 12
    body = api.post("/v1/start_encode", data={"task_token": "a" * 32, "profiles": "p1",
                                              "uri": f"{origin.url}/carphone_qcif_sar.mp4"}).json()
    assert body["error"] == 5


def test_healthz_tells_no_server_paths(api):
    body = api.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["ffmpeg"] == "ok"
    assert body["workers"] == "ok"
    assert "/" not in "".join(str(v) for k, v in body.items() if k != "version")


def test_server_still_healthy_after_all_that(api):
    assert api.get("/healthz").status_code == 200
    assert api.get("/docs").status_code == 200

"""Hostile input on the Octet and TransparentEdge routes: every answer is the dialect's own 4xx, never a 5xx."""

from __future__ import annotations

import itertools
import json

from tests.api.conftest import bearer

ODD_VALUES = [None, True, 0, -1, 1e308, "", "x" * 5000, "\x00", "../../etc/passwd", "%2e%2e/", "日本語", [], {},
              [1, 2], {"a": {"b": {"c": []}}}]

OCTET_FIELDS = ["input", "input.url", "destination", "destination.provider", "destination.region",
                "destination.bucket", "destination.creds", "destination.creds.access_key_id", "outputs",
                "outputs.0", "outputs.0.codec", "outputs.0.resolution", "outputs.0.dest_path",
                "outputs.0.bitrate_kbps", "outputs.0.preset", "outputs.0.level", "outputs.0.rc", "outputs.0.cq",
                "outputs.0.qp", "callback", "include_audio"]


def _octet() -> dict:
    return {"input": {"url": "http://127.0.0.1:9/a.mp4"},
            "destination": {"provider": "s3", "region": "us-east-1", "bucket": "b-1",
                            "creds": {"access_key_id": "k", "secret_access_key": "s"}},
            "outputs": [{"codec": "h264", "resolution": "640x360", "dest_path": "a.mp4"}]}


def _set(doc, dotted: str, value):
    *path, last = dotted.split(".")
    node = doc
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def test_octet_create_never_fails_inside(client, keys):
    key = keys["main"][0]
    for field, value in itertools.product(OCTET_FIELDS, ODD_VALUES):
        doc = _octet()
        _set(doc, field, value)
        r = client.post("/v0/jobs/create", content=json.dumps(doc), headers={**bearer(key),
                                                                              "Content-Type": "application/json"})
        assert r.status_code in (200, 400), (field, value, r.status_code, r.text)
        body = r.json()
        assert list(body) == (["job_id"] if r.status_code == 200 else ["error"]), (field, value, body)


def test_transparent_order_never_fails_inside(client, keys):
    key, company = keys["main"]
    p = client.post(f"/v1/media/{company}/profiles", json={"name": "p", "settings": {"output": "mp4"}},
                    headers=bearer(key)).json()
    base = {"origin": "http://127.0.0.1:9/a.mp4", "destinations": ["ftp://u:p@127.0.0.1:9/out/"],
            "notifications": [{"email": "a@b.example"}], "jobs": [{"profile_id": p["id"], "filename": "a.mp4"}]}
    for field, value in itertools.product(["origin", "destinations", "destinations.0", "notifications",
                                           "notifications.0", "notifications.0.email", "jobs", "jobs.0",
                                           "jobs.0.profile_id", "jobs.0.filename", "jobs.0.label", "priority",
                                           "thumbnails"], ODD_VALUES):
        doc = json.loads(json.dumps(base))
        _set(doc, field, value)
        r = client.post(f"/v1/media/{company}/transcode", data={"order": json.dumps(doc)}, headers=bearer(key))
        assert r.status_code in (201, 400), (field, value, r.status_code, r.text)
        if r.status_code == 400:
            body = r.json()
            assert len(body) == 1 and isinstance(next(iter(body.values())), list), (field, value, body)


def test_odd_paths_and_methods(client, keys):
    key, company = keys["main"]
    for path in ("/v1/media/99999999999999999999/transcode", f"/v1/media/{company}/transcode/%00",
                 f"/v1/media/{company}/transcode/" + "9" * 500, f"/v1/media/{company}/profiles/-1",
                 f"/v1/media/{company}/profiles/99999999999", "/v0/jobs/%2e%2e", "/v0/jobs/" + "a" * 1000):
        for method in ("GET", "POST", "DELETE", "PATCH", "PUT"):
            r = client.request(method, path, headers=bearer(key), content=b"{}")
            assert r.status_code < 500, (method, path, r.status_code, r.text)

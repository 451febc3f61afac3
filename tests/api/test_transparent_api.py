"""TransparentEdge over HTTP: OAuth2 token, profiles, orders in the seed's shapes, DRF errors, companies apart."""

from __future__ import annotations

import json
import re

import pytest

from tests.api.conftest import MAIN_KEY, bearer

SETTINGS = {"output": "mp4", "size": "320x180", "bitrate": 300, "video_codec": "libx264"}


def profile(client, key, company, name="Prueba escalado", settings=SETTINGS):
    r = client.post(f"/v1/media/{company}/profiles/", json={"name": name, "settings": settings}, headers=bearer(key))
    assert r.status_code == 201, r.text
    return r.json()


def order(profile_ids, origin="http://127.0.0.1:9/otro.mp4", **extra) -> dict:
    return {"priority": 5, "origin": origin,
            "notifications": [{"email": "correo@tuservidor.com"}],
            "jobs": [{"label": f"prioridad {i}", "filename": f"nombre{i}.mp4", "profile_id": p}
                     for i, p in enumerate(profile_ids)], **extra}


def test_oauth2_token_is_a_bearer(client, keys):
    r = client.post("/v1/oauth2/access_token/", data={"client_id": "anything", "client_secret": MAIN_KEY,
                                                      "grant_type": "client_credentials"})
    assert r.status_code == 200
    token = r.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0 and token["scope"] == "read write"
    company = keys["main"][1]
    assert client.get(f"/v1/media/{company}/transcode", headers=bearer(token["access_token"])).json() == []
    r = client.post("/v1/oauth2/access_token/", data={"client_secret": "wrongwrongwrong", "grant_type":
                                                      "client_credentials"})
    assert (r.status_code, r.json()) == (401, {"error": "invalid_client"})
    r = client.post("/v1/oauth2/access_token", data={"client_secret": MAIN_KEY, "grant_type": "password"})
    assert (r.status_code, r.json()) == (400, {"error": "unsupported_grant_type"})


def test_profiles_crud(client, keys):
    key, company = keys["main"]
    p = profile(client, key, company)
    assert p == {"id": p["id"], "name": "Prueba escalado", "settings": SETTINGS}
    assert client.get(f"/v1/media/{company}/profiles", headers=bearer(key)).json() == [p]
    r = client.patch(f"/v1/media/{company}/profiles/{p['id']}", json={"name": "Test HLS"}, headers=bearer(key))
    assert r.json() == {**p, "name": "Test HLS"}
    r = client.put(f"/v1/media/{company}/profiles/{p['id']}/", json={"name": "x", "settings": {"output": "webm"}},
                   headers=bearer(key))
    assert r.json() == {"id": p["id"], "name": "x", "settings": {"output": "webm"}}
    assert client.get(f"/v1/media/{company}/profiles/{p['id']}", headers=bearer(key)).json()["name"] == "x"
    # bad settings are named
    r = client.post(f"/v1/media/{company}/profiles", json={"name": "bad", "settings": {"output": "mp4", "size": "x"}},
                    headers=bearer(key))
    assert r.status_code == 400 and list(r.json()) == ["settings"], r.json()
    r = client.post(f"/v1/media/{company}/profiles", json={"name": "hls", "settings": {"output": "advanced_hls"}},
                    headers=bearer(key))
    assert r.json() == {"settings": ["settings.output: must be one of mp4, webm"]}
    r = client.post(f"/v1/media/{company}/profiles", json={"settings": SETTINGS}, headers=bearer(key))
    assert r.json() == {"name": ["name: is required"]}
    # another company cannot see or touch it
    other_key, other_company = keys["other"]
    assert client.get(f"/v1/media/{other_company}/profiles/{p['id']}", headers=bearer(other_key)).status_code == 404
    assert client.delete(f"/v1/media/{other_company}/profiles/{p['id']}",
                         headers=bearer(other_key)).status_code == 404
    assert client.delete(f"/v1/media/{company}/profiles/{p['id']}", headers=bearer(key)).status_code == 204
    r = client.get(f"/v1/media/{company}/profiles/{p['id']}", headers=bearer(key))
    assert (r.status_code, r.json()) == (404, {"detail": "Not found."})


def test_order_create_list_detail(client, keys, rt):
    key, company = keys["main"]
    p1, p2 = profile(client, key, company), profile(client, key, company, "Test HLS", {"output": "mp4"})
    body = order([p1["id"], p2["id"]], origin="http://127.0.0.1:9/otro.mp4")
    # the documented way: form field "order" holding JSON, posted to .../transcode/
    r = client.post(f"/v1/media/{company}/transcode/", data={"order": json.dumps(body)}, headers=bearer(key))
    assert r.status_code == 201, r.text
    detail = r.json()
    assert re.fullmatch(r"[0-9]{10}-[0-9]{4}", detail["order_id"])
    assert detail == {
        "order_id": detail["order_id"],
        "transcodingupload_set": [],
        "transcodingdownload": {"download_url": "http://127.0.0.1:9/otro.mp4", "download_protocol": "HTTP",
                                "download_user": None},
        "transcodingnotification_set": [{"callback_url": None, "email": "correo@tuservidor.com"}],
        "transcodingjob_set": [
            {"profile": {"id": p1["id"], "name": "Prueba escalado"}, "filename": "nombre0.mp4",
             "label": "prioridad 0", "progress": 0.0},
            {"profile": {"id": p2["id"], "name": "Test HLS"}, "filename": "nombre1.mp4",
             "label": "prioridad 1", "progress": 0.0}],
        "duration": None, "size": None, "filename": "nombre0.mp4", "label": "prioridad 0", "status": "QUEUED",
        "timestamp": detail["timestamp"], "comment": f"Order {detail['order_id']} queued",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00", detail["timestamp"])
    # a JSON body works too
    r = client.post(f"/v1/media/{company}/transcode", json={**order([p1["id"]]), "priority": 8},
                    headers=bearer(key))
    assert r.status_code == 201
    second = r.json()["order_id"]
    listed = client.get(f"/v1/media/{company}/transcode", headers=bearer(key)).json()
    assert [o["id"] for o in listed] == [second, detail["order_id"]]
    assert listed[1] == {"id": detail["order_id"], "created_on": detail["timestamp"], "status": "QUEUED"}
    got = client.get(f"/v1/media/{company}/transcode/{detail['order_id']}/", headers=bearer(key)).json()
    assert got == detail
    # requeue needs a finished order; relaunch makes a new one from the same request
    r = client.post(f"/v1/media/{company}/transcode/{second}/requeue/", headers=bearer(key))
    assert r.status_code == 409 and "QUEUED" in r.json()["detail"]
    r = client.post(f"/v1/media/{company}/transcode/{second}/relaunch/", headers=bearer(key))
    assert r.status_code == 201 and r.json()["order_id"] not in (second, detail["order_id"])
    assert r.json()["transcodingjob_set"][0]["filename"] == "nombre0.mp4"
    # priority (0-10, default 5) is the task's neutral priority -5..+5; a relaunch keeps it
    project = rt.projects.by_key(key)
    prio = {o: rt.tasks.find(project, "transparent", o, by="external_id").priority
            for o in (detail["order_id"], second, r.json()["order_id"])}
    assert list(prio.values()) == [0, 3, 3]


def test_companies_are_apart(client, keys):
    key, company = keys["main"]
    other_key, other_company = keys["other"]
    p = profile(client, key, company)
    oid = client.post(f"/v1/media/{company}/transcode", json=order([p["id"]]), headers=bearer(key)).json()["order_id"]
    denied = {"detail": "You do not have permission to perform this action."}
    for method, path in (("GET", f"/v1/media/{company}/transcode"), ("GET", f"/v1/media/{company}/transcode/{oid}"),
                         ("POST", f"/v1/media/{company}/transcode/{oid}/relaunch"),
                         ("GET", f"/v1/media/{company}/profiles")):
        r = client.request(method, path, headers=bearer(other_key))
        assert (r.status_code, r.json()) == (403, denied), path
    # its own company path with the other's order id: no such order
    r = client.get(f"/v1/media/{other_company}/transcode/{oid}", headers=bearer(other_key))
    assert (r.status_code, r.json()) == (404, {"detail": "Not found."})
    assert client.get(f"/v1/media/{other_company}/transcode", headers=bearer(other_key)).json() == []
    # and the other company cannot use this company's profile in an order
    r = client.post(f"/v1/media/{other_company}/transcode", json=order([p["id"]]), headers=bearer(other_key))
    assert (r.status_code, r.json()) == (400, {"jobs": [f"profile {p['id']} does not exist"]})


@pytest.mark.parametrize("change, field, message", [
    pytest.param({"origin": "file:///etc/passwd"}, "origin", "origin: scheme file: is not allowed", id="origin"),
    pytest.param({"jobs": []}, "jobs", "jobs: must not be empty", id="no-jobs"),
    pytest.param({"jobs": [{"profile_id": 1, "filename": "../x.mp4"}]}, "jobs", "jobs[0].filename:",
                 id="filename"),
    pytest.param({"destinations": ["s3://bucket/x"]}, "destinations", "destinations[0]:", id="dest-scheme"),
    pytest.param({"thumbnails": [{"filename": "a.jpg"}]}, "thumbnails",
                 "thumbnails: thumbnails are not supported yet by vidmill", id="thumbnails"),
    pytest.param({"notifications": [{"email": "not-an-email"}]}, "notifications", "notifications[0].email:",
                 id="email"),
    pytest.param({"notifications": [{"callback_url": "http://127.0.0.1:9/a"}, {"callback_url": "ftp://127.0.0.1/b"}]},
                 "notifications", "notifications[1].callback_url:", id="second-callback-scheme"),
    pytest.param({"surprise": 1}, "surprise", "surprise: unknown field", id="unknown"),
])
def test_bad_orders_in_drf_shape(client, keys, change, field, message):
    key, company = keys["main"]
    p = profile(client, key, company)
    body = {**order([p["id"]]), **change}
    r = client.post(f"/v1/media/{company}/transcode", data={"order": json.dumps(body)}, headers=bearer(key))
    assert r.status_code == 400
    assert list(r.json()) == [field], r.json()
    assert r.json()[field][0].startswith(message), r.json()


def test_email_needs_an_smtp_server(client, keys, rt):
    key, company = keys["main"]
    p = profile(client, key, company)
    rt.settings.smtp_host = ""
    r = client.post(f"/v1/media/{company}/transcode", json=order([p["id"]]), headers=bearer(key))
    assert r.status_code == 400
    assert r.json()["notifications"][0].startswith("e-mail notifications need an SMTP server")


def test_missing_or_broken_order_field(client, keys):
    key, company = keys["main"]
    r = client.post(f"/v1/media/{company}/transcode", data={"orden": "{}"}, headers=bearer(key))
    assert (r.status_code, r.json()) == (400, {"order": ["This field is required."]})
    r = client.post(f"/v1/media/{company}/transcode", data={"order": "{nope"}, headers=bearer(key))
    assert r.status_code == 400 and r.json()["order"][0].startswith("order: invalid JSON")


def test_auth_errors(client, keys):
    company = keys["main"][1]
    r = client.get(f"/v1/media/{company}/transcode")
    assert (r.status_code, r.json()) == (401, {"detail": "Authentication credentials were not provided."})
    r = client.get(f"/v1/media/{company}/transcode", headers=bearer("notakey12345"))
    assert (r.status_code, r.json()) == (401, {"detail": "Invalid token."})
    for path in ("/v1/media/abc/transcode", f"/v1/media/{company}/transcode/not-an-order",
                 f"/v1/media/{company}/profiles/x"):
        r = client.get(path, headers=bearer(MAIN_KEY))
        assert r.status_code in (403, 404) and list(r.json()) == ["detail"], path

"""Octet v0 over HTTP: bearer keys, {"error": reason} answers, one project never sees another's jobs."""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer
from vidmill.api.octet_request import parse_job, to_query


def sample(**output) -> dict:
    out = {"codec": "h264", "resolution": "-1x360", "dest_path": "renditions/v360.mp4", "bitrate_kbps": 600,
           **output}
    return {"input": {"url": "http://127.0.0.1:9/in.mp4"},
            "destination": {"provider": "s3", "region": "us-east-1", "bucket": "octet-out",
                            "creds": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "verysecret"}},
            "outputs": [out]}


def _job_in(rt, project_name_key: str, data: dict) -> str:
    """A stored Octet job (queued; no worker runs in these tests)."""
    project = rt.projects.by_key(project_name_key)
    query, shown = to_query(parse_job(data))
    return rt.tasks.submit(project, query, dialect="octet", dialect_data=shown).token


@pytest.mark.parametrize("headers, status, error", [
    pytest.param({}, 401, "missing API key: send Authorization: Bearer <key>", id="none"),
    pytest.param({"Authorization": "Basic abc"}, 401, "missing API key: send Authorization: Bearer <key>", id="basic"),
    pytest.param({"Authorization": "Bearer nosuchkey123"}, 401, "invalid API key", id="unknown"),
    pytest.param({"Authorization": "Bearer bad key!"}, 401, "invalid API key", id="malformed"),
])
def test_auth(client, headers, status, error):
    r = client.post("/v0/jobs/create", json=sample(), headers=headers)
    assert (r.status_code, r.json()) == (status, {"error": error})
    r = client.get("/v0/jobs/" + "0" * 32, headers=headers)
    assert (r.status_code, r.json()) == (status, {"error": error})


@pytest.mark.parametrize("body, error", [
    pytest.param(b"", "body: a JSON object is required", id="empty"),
    pytest.param(b"[1]", "body: must be a JSON object", id="array"),
    pytest.param(b"{nope", "body: invalid JSON", id="broken"),
    pytest.param(b'{"a": NaN}', "body: invalid JSON: NaN is not allowed", id="nan"),
    pytest.param(b"[" * 100 + b"]" * 100, "body: JSON is nested deeper", id="deep"),
    pytest.param(b'{"input": 1, "input": 2}', "body: invalid JSON: duplicate key", id="duplicate"),
])
def test_bad_bodies(client, keys, body, error):
    r = client.post("/v0/jobs/create", content=body, headers={**bearer(keys["main"][0]),
                                                              "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"].startswith(error), r.json()


def test_bad_fields_name_the_field(client, keys):
    r = client.post("/v0/jobs/create", json=sample(codec="hevc"), headers=bearer(keys["main"][0]))
    assert r.status_code == 400
    assert r.json() == {"error": "outputs[0].codec: HEVC support is not yet publicly available; use h264"}
    r = client.post("/v0/jobs/create", json=sample(rc="cbr", bitrate_kbps=None), headers=bearer(keys["main"][0]))
    assert r.json() == {"error": "outputs[0].bitrate_kbps: rc cbr needs a bitrate"}


def test_ssrf_guard_on_input_and_callback(rt):
    """Start-time vetting names Octet's fields (the same check the create route runs after the support policy)."""
    from vidmill.api.dialects import vet_query
    from vidmill.api.octet import _octet_field
    from vidmill.errors import QueryError

    rt.settings.allow_private_networks = False
    for field, value, named in (("input", {"url": "http://169.254.169.254/latest/meta-data"}, "input.url:"),
                                ("callback", "http://10.0.0.1/hook", "callback:")):
        data = sample()
        data["input"]["url"] = "https://93.184.215.14/in.mp4"  # a public address: vetted without DNS
        data[field] = value
        query, _ = to_query(parse_job(data))
        with pytest.raises(QueryError) as exc:
            vet_query(query, rt.settings)
        assert _octet_field(exc.value.message).startswith(named), exc.value.message


def test_body_limit(client, keys, rt):
    big = b'{"x": "' + b"a" * (rt.settings.max_request_bytes + 10) + b'"}'
    r = client.post("/v0/jobs/create", content=big, headers={**bearer(keys["main"][0]),
                                                             "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("request body too large")


def test_job_view_and_isolation(client, rt, keys):
    main_key, other_key = keys["main"][0], keys["other"][0]
    job_id = _job_in(rt, main_key, sample())
    r = client.get(f"/v0/jobs/{job_id}", headers=bearer(main_key))
    assert r.status_code == 200
    body = r.json()
    assert body["job_id"] == job_id and body["status"] == "queued" and body["progress"] == 0
    assert body["outputs"] == [{"dest_path": "renditions/v360.mp4", "resolution": "-1x360", "status": "queued",
                                "progress": 0.0, "width": None, "height": None, "bitrate_kbps": None, "size": None,
                                "reason": None}]
    assert "verysecret" not in r.text and "AKIDEXAMPLE" not in r.text
    # another project's key: the job does not exist for it
    r = client.get(f"/v0/jobs/{job_id}", headers=bearer(other_key))
    assert (r.status_code, r.json()) == (404, {"error": "job not found"})
    for bad in ("nope", "0" * 32, job_id.upper(), job_id + "0"):
        r = client.get(f"/v0/jobs/{bad}", headers=bearer(main_key))
        assert (r.status_code, r.json()) == (404, {"error": "job not found"})


def test_qencode_routes_keep_their_shape(client):
    r = client.post("/v1/status", data={})
    assert r.status_code == 200
    assert r.json() == {"error": 13, "message": "Task_tokens field value does not pass validation"}


def test_qencode_status_answers_for_qencode_tasks_only(client, keys, rt):
    """/v1/status takes no key (as Qencode's): an Octet job id or a TransparentEdge order's task token is as
    unknown there as a token that never existed, in Qencode's own answer."""
    main_key, company = keys["main"]
    octet = _job_in(rt, main_key, sample())
    prof = client.post(f"/v1/media/{company}/profiles", headers=bearer(main_key),
                       json={"name": "p", "settings": {"output": "mp4", "size": "160x90"}}).json()
    r = client.post(f"/v1/media/{company}/transcode", headers=bearer(main_key), json={
        "origin": "http://127.0.0.1:9/in.mp4", "jobs": [{"profile_id": prof["id"], "filename": "a.mp4"}]})
    assert r.status_code == 201, r.text
    te = rt.tasks.find(rt.projects.by_key(main_key), "transparent", r.json()["order_id"], by="external_id").token
    token = client.post("/v1/access_token", data={"api_key": main_key}).json()["token"]
    qencode = client.post("/v1/create_task", data={"token": token}).json()["task_token"]

    def status(tokens):
        r = client.post("/v1/status", data={"task_tokens": ",".join(tokens)})
        assert r.status_code == 200
        return r.json()

    unknown = status(["e" * 32])
    assert unknown == {"error": 0, "statuses": {}}
    assert status([octet]) == unknown and status([te]) == unknown
    both = status([octet, te, qencode])
    assert list(both["statuses"]) == [qencode] and both["statuses"][qencode]["status"] == "queued"

"""A TransparentEdge client against a real vidmill server with real media: profiles, an order of two jobs,
progress moving in the detail, FINISHED, and the outputs read back."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.notify.test_email import Inbox
from tests.servers import VidmillServer, free_port
pytestmark = pytest.mark.integration

COMPANY = 1  # the server's default project: a fresh data dir makes it first


@pytest.fixture(scope="module")
def inbox():
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def te_server(tmp_path_factory, inbox):
    """A server with an SMTP server for e-mail notifications."""
    env = {"VIDMILL_SMTP_HOST": "127.0.0.1", "VIDMILL_SMTP_PORT": str(inbox.port),
           "VIDMILL_SMTP_FROM": "transcoder@vidmill.test"}
    with VidmillServer(tmp_path_factory.mktemp("te"), env=env) as s:
        yield s


def _token(server) -> str:
    r = httpx.post(f"{server.url}/v1/oauth2/access_token/",
                   data={"client_id": "vidmill", "client_secret": server.api_key, "grant_type": "client_credentials"})
    r.raise_for_status()
    return r.json()["access_token"]


def wait_order(client: httpx.Client, order_id: str, timeout: float = 240.0) -> tuple[dict, list[dict]]:
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while time.monotonic() < deadline:
        detail = client.get(f"/v1/media/{COMPANY}/transcode/{order_id}").json()
        seen.append(detail)
        if detail["status"] in ("FINISHED", "ERROR"):
            return detail, seen
        time.sleep(0.25)
    raise AssertionError(f"order did not finish: {seen[-1]}")


def test_order_with_two_profiles(te_server, origin, tmp_path):
    server = te_server
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {_token(server)}"},
                      timeout=30) as client:
        small = client.post(f"/v1/media/{COMPANY}/profiles/", json={
            "name": "Prueba escalado", "settings": {"output": "mp4", "size": "320x180", "bitrate": 250,
                                                    "duration": 20, "video_codec": "libx264",
                                                    "video_codec_parameters": {"preset": "veryfast"}}}).json()
        webm = client.post(f"/v1/media/{COMPANY}/profiles/", json={
            "name": "Test WebM", "settings": {"output": "webm", "height": 144, "duration": 20,
                                              "video_codec": "libvpx", "audio_codec": "libvorbis"}}).json()
        body = {"priority": 5, "origin": f"{origin.url}/bbb_trailer_720p_55s_mp3.mp4",
                "notifications": [{"email": "correo@tuservidor.com"}],
                "jobs": [{"label": "prioridad alta", "filename": "nombre.mp4", "profile_id": small["id"]},
                         {"label": "prioridad media", "filename": "nombre2.webm", "profile_id": webm["id"]}]}
        r = client.post(f"/v1/media/{COMPANY}/transcode/", data={"order": json.dumps(body)})
        assert r.status_code == 201, r.text
        order_id = r.json()["order_id"]
        detail, seen = wait_order(client, order_id)
    assert detail["status"] == "FINISHED", detail
    assert detail["comment"] == f"Order {order_id} finished"
    assert [j["progress"] for j in detail["transcodingjob_set"]] == [100.0, 100.0]
    assert [(j["profile"], j["filename"], j["label"]) for j in detail["transcodingjob_set"]] == [
        ({"id": small["id"], "name": "Prueba escalado"}, "nombre.mp4", "prioridad alta"),
        ({"id": webm["id"], "name": "Test WebM"}, "nombre2.webm", "prioridad media")]
    assert detail["duration"] == pytest.approx(55, abs=1.5)
    assert detail["size"] == (origin_size := 7826953), origin_size
    # progress moved: the detail showed PROCESSING with a job between 0 and 100 on the way
    statuses = [d["status"] for d in seen]
    assert "PROCESSING" in statuses
    partial = {p for d in seen for p in (j["progress"] for j in d["transcodingjob_set"]) if 0 < p < 100}
    assert len(partial) >= 2, [[j["progress"] for j in d["transcodingjob_set"]] for d in seen]

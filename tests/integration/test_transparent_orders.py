"""A TransparentEdge client against a real vidmill server with real media: an order downloads from FTP
(pyftpdlib), runs two profiles, uploads to FTP, shows progress moving, ends FINISHED, and its callback and
e-mail (aiosmtpd) arrive."""

from __future__ import annotations

import ftplib
import json
import time

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.integration.helpers import streams
from tests.notify.test_email import Inbox
from tests.servers import VidmillServer, free_port
from tests.storage_servers import FtpServer
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
def ftp(tmp_path_factory, media):
    """pyftpdlib with the source in /in/ (the customer's FTP for both download and upload)."""
    server = FtpServer(tmp_path_factory.mktemp("te-ftp"))
    (server.root / "in").mkdir()
    (server.root / "in" / "trailer.mp4").write_bytes((media / "bbb_trailer_720p_55s_mp3.mp4").read_bytes())
    yield server
    server.stop()


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


def test_order_from_ftp_to_ftp_with_two_profiles(te_server, ftp, inbox, receiver, tmp_path):
    server = te_server
    login = f"{ftp.user}:{ftp.password}@127.0.0.1:{ftp.port}"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {_token(server)}"},
                      timeout=30) as client:
        small = client.post(f"/v1/media/{COMPANY}/profiles/", json={
            "name": "Prueba escalado", "settings": {"output": "mp4", "size": "320x180", "bitrate": 250,
                                                    "duration": 20, "video_codec": "libx264",
                                                    "video_codec_parameters": {"preset": "veryfast"}}}).json()
        webm = client.post(f"/v1/media/{COMPANY}/profiles/", json={
            "name": "Test WebM", "settings": {"output": "webm", "height": 144, "duration": 20,
                                              "video_codec": "libvpx", "audio_codec": "libvorbis"}}).json()
        body = {"priority": 5, "origin": f"ftp://{login}/in/trailer.mp4",
                "destinations": [f"ftp://{login}/out/"],
                "notifications": [{"email": "correo@tuservidor.com"},
                                  {"callback_url": f"{receiver.url}?d=te-order"},
                                  {"callback_url": f"{receiver.url}?d=te-order-2", "email": None}],
                "jobs": [{"label": "prioridad alta", "filename": "nombre.mp4", "profile_id": small["id"]},
                         {"label": "prioridad media", "filename": "nombre2.webm", "profile_id": webm["id"]}]}
        r = client.post(f"/v1/media/{COMPANY}/transcode/", data={"order": json.dumps(body)})
        assert r.status_code == 201, r.text
        assert ftp.password not in r.text
        order_id = r.json()["order_id"]
        detail, seen = wait_order(client, order_id)
    assert detail["status"] == "FINISHED", detail
    assert detail["comment"] == f"Order {order_id} finished"
    assert detail["transcodingdownload"] == {"download_url": f"ftp://127.0.0.1:{ftp.port}/in/trailer.mp4",
                                             "download_protocol": "FTP", "download_user": ftp.user}
    assert detail["transcodingupload_set"] == [{"upload_url": f"ftp://127.0.0.1:{ftp.port}/out/",
                                                "upload_protocol": "FTP", "upload_user": ftp.user}]
    assert [j["progress"] for j in detail["transcodingjob_set"]] == [100.0, 100.0]
    assert [(j["profile"], j["filename"], j["label"]) for j in detail["transcodingjob_set"]] == [
        ({"id": small["id"], "name": "Prueba escalado"}, "nombre.mp4", "prioridad alta"),
        ({"id": webm["id"], "name": "Test WebM"}, "nombre2.webm", "prioridad media")]
    assert detail["duration"] == pytest.approx(55, abs=1.5)
    assert detail["size"] == 7826953
    # progress moved: the detail showed PROCESSING with jobs between 0 and 100 on the way
    assert "PROCESSING" in [d["status"] for d in seen]
    partial = {p for d in seen for p in (j["progress"] for j in d["transcodingjob_set"]) if 0 < p < 100}
    assert len(partial) >= 2, [[j["progress"] for j in d["transcodingjob_set"]] for d in seen]
    # the outputs, read back with ftplib from the customer's FTP
    with ftplib.FTP() as f:
        f.connect("127.0.0.1", ftp.port, timeout=10)
        f.login(ftp.user, ftp.password)
        assert sorted(n.rsplit("/", 1)[-1] for n in f.nlst("out")) == ["nombre.mp4", "nombre2.webm"]
        for name in ("nombre.mp4", "nombre2.webm"):
            with open(tmp_path / name, "wb") as out:
                f.retrbinary(f"RETR out/{name}", out.write)
    mp4, webm_out = streams(tmp_path / "nombre.mp4"), streams(tmp_path / "nombre2.webm")
    assert (mp4["video"]["width"], mp4["video"]["height"], mp4["video"]["codec"]) == (320, 180, "h264")
    assert webm_out["video"]["height"] == 144 and webm_out["video"]["codec"] == "vp8"
    assert mp4["duration"] == pytest.approx(20, abs=0.5)
    # the callback (the order detail as JSON) and the e-mail arrive
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (inbox.messages and
                                                any(c.path == "/hook?d=te-order" for c in receiver.calls) and
                                                any(c.path == "/hook?d=te-order-2" for c in receiver.calls)):
        time.sleep(0.2)
    (hook,) = [c for c in receiver.calls if c.path == "/hook?d=te-order"]
    # every notification's callback_url is called, with the same body
    (hook2,) = [c for c in receiver.calls if c.path == "/hook?d=te-order-2"]
    assert json.loads(hook2.body) == json.loads(hook.body)
    assert hook.headers["Content-Type"] == "application/json"
    sent = json.loads(hook.body)
    assert sent["order_id"] == order_id and sent["status"] == "FINISHED"
    assert ftp.password not in hook.body.decode()
    (mail,) = inbox.messages
    assert mail["To"] == "correo@tuservidor.com" and mail["From"] == "transcoder@vidmill.test"
    assert mail["Subject"] == f"[vidmill] Order {order_id} FINISHED"
    text = mail.get_payload(decode=True).decode()
    assert f"Order {order_id} finished" in text and "nombre2.webm" in text and ftp.password not in text

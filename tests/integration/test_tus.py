"""Direct uploads (TUS) against a real vidmill server, with the real clients: the Qencode SDK's own uploader
(tuspy 0.2.5) and tus-js-client 4.3.1 (what browsers use) under node, through a proxy that breaks the
connection mid-upload."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from qencode3 import tus_uploader
from qencode3.client import Client
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from tests.integration.helpers import download, streams, wait_task
from tests.servers import ROOT, VidmillServer, free_port
from vidmill.core.projects import Projects
from vidmill.store.db import Database

pytestmark = pytest.mark.integration

TUS = {"Tus-Resumable": "1.0.0"}
TUS_JS = ROOT / "tests" / "tus"
MB = 1024 * 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cli(server: VidmillServer, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "vidmill.cli", "projects", *args], capture_output=True, text=True,
                         env={**os.environ, "VIDMILL_DATA_DIR": str(server.data_dir)}, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def project_client(server: VidmillServer, name: str) -> tuple[Client, int]:
    """A new project in the running server's database (made in-process: a CLI round trip costs seconds)."""
    db = Database(f"sqlite:///{server.data_dir / 'vidmill.db'}")
    try:
        project, key = Projects(db).create(name)
    finally:
        db.dispose()
    client = Client(key, api_url=server.url + "/")
    assert not client.error, client.message
    return client, project.id


def endpoint(task) -> str:
    return f"{task.upload_url}/{task.task_token}"


def create(url: str, length: int, **headers) -> httpx.Response:
    return httpx.post(url, headers={**TUS, "Upload-Length": str(length), **headers}, timeout=10)


def patch(url: str, offset: int, data: bytes) -> httpx.Response:
    return httpx.patch(url, content=data, timeout=30, headers={
        **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})


def stored(server: VidmillServer, uid: str) -> list[Path]:
    return sorted(server.data_dir.glob(f"uploads/*/{uid}*"))


@pytest.fixture(scope="module")
def client(server):
    c = Client(server.api_key, api_url=server.url + "/")
    assert not c.error, c.message
    return c


def test_qencode_sdk_uploads_in_1mb_chunks_and_the_tus_source_transcodes(server, client, media, tmp_path):
    source = media / "city_cc0_720x405_mpeg2.mpg"  # 4.4 MiB: five PATCHes of 1 MB
    task = client.create_task()
    assert task.upload_url == f"{server.url}/v1/upload_file"
    said = []
    t0 = time.perf_counter()
    status = tus_uploader.upload(file_path=str(source), url=endpoint(task), chunk_size=MB, log_func=said.append)
    upload_s = time.perf_counter() - t0
    assert status.status == "Ok" and status.url.startswith("tus:") and len(status.url) == 36, status.url
    chunks = [s for s in said if s.endswith("bytes uploaded ...")]
    assert len(chunks) == -(-source.stat().st_size // MB) == 5
    data, info = stored(server, status.url[4:])
    assert sha256(data) == sha256(source) and info.name.endswith(".info")

    task.custom_start({"query": {"source": status.url, "format": [
        {"output": "mp4", "size": "320x180", "video_codec": "libx264", "duration": 2}]}})
    assert not task.error, task.message
    result = wait_task(task)
    assert result["status"] == "completed" and result["error"] == 0, result
    assert abs(float(result["source_size"]) * 1e6 - source.stat().st_size) < 10  # Qencode renders MB
    out = tmp_path / "out.mp4"
    download(result["videos"][0]["url"], out)
    got = streams(out)
    assert (got["video"]["codec"], got["video"]["width"], got["video"]["height"]) == ("h264", 320, 180)
    assert 1.8 <= got["duration"] <= 2.3
    print(f"\nSDK upload of {source.stat().st_size} bytes in 1 MB chunks: {upload_s:.2f} s")


def test_browser_headers_cors_and_options(server, client):
    task = client.create_task()
    url = endpoint(task)
    pre = httpx.options(url, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PATCH",
                                      "Access-Control-Request-Headers": "tus-resumable,upload-offset,content-type"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "*"
    assert "PATCH" in pre.headers["access-control-allow-methods"]
    assert "upload-offset" in pre.headers["access-control-allow-headers"].lower()
    for u in (url, url + "/"):  # tus capabilities with or without the trailing slash
        caps = httpx.options(u, headers={"Origin": "https://app.example"})
        assert caps.status_code == 204 and caps.headers["tus-version"] == "1.0.0"
        assert caps.headers["tus-extension"] == "creation,expiration,termination"
    made = create(url, 10, Origin="https://app.example", **{"Upload-Metadata": "filename " + "YS5tcDQ="})
    assert made.status_code == 201
    exposed = made.headers["access-control-expose-headers"].lower()
    assert {"location", "upload-offset", "upload-length", "tus-resumable"} <= set(exposed.replace(" ", "").split(","))
    assert made.headers["location"].startswith(f"{url}/") and "{" not in made.headers["location"]
    head = httpx.head(made.headers["location"], headers=TUS)
    assert head.status_code == 200 and head.headers["upload-offset"] == "0" and head.headers["upload-length"] == "10"
    assert head.headers["upload-expires"].endswith(" GMT")


@pytest.fixture
def cutting_proxy(tmp_path_factory):
    """A vidmill server reached through a TCP proxy (its PUBLIC_URL) that can break the connection mid-request."""
    port = free_port()
    with CuttingProxy(port) as proxy:
        with VidmillServer(tmp_path_factory.mktemp("tus-proxy"), port=port,
                           env={"VIDMILL_PUBLIC_URL": proxy.url}) as server:
            yield proxy, server


def node(*args: str) -> dict:
    if not (TUS_JS / "node_modules" / "tus-js-client").is_dir():
        pytest.fail("tus-js-client is not installed: `make test` runs `npm ci` in tests/tus")
    out = subprocess.run(["node", str(TUS_JS / "upload.mjs"), *args], capture_output=True, text=True,
                         cwd=TUS_JS, timeout=120)
    assert out.stdout.strip(), out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tus_js_client_upload_broken_halfway_resumes_from_the_servers_offset(cutting_proxy, media):
    proxy, server = cutting_proxy
    source = media / "bbb_trailer_720p_55s_mp3.mp4"
    size = source.stat().st_size
    client = Client(server.api_key, api_url=server.url + "/")
    task = client.create_task()
    assert task.upload_url == f"{proxy.url}/v1/upload_file"

    proxy.cut_after = size // 2  # bytes from client to server, then the connection dies
    first = node("new", endpoint(task), str(source), "trailer.mp4")
    assert first["ok"] is False and first["url"], first
    assert first["patchOffsets"] == [0]
    proxy.cut_after = None
    head = httpx.head(first["url"], headers=TUS)
    assert head.status_code == 200
    offset = int(head.headers["upload-offset"])
    assert size // 2 - 8192 <= offset <= size // 2, (offset, size)  # what got through, less the request headers

    second = node("resume", first["url"], str(source))
    assert second["ok"] is True, second
    assert second["patchOffsets"] == [offset]  # one PATCH, from the server's offset: nothing sent twice
    uid = first["url"].rsplit("/", 1)[1]
    data, _ = stored(server, uid)
    assert sha256(data) == sha256(source)

    task.custom_start({"query": {"source": f"tus:{uid}", "format": [{"output": "metadata"}]}})
    assert not task.error, task.message
    result = wait_task(task)
    assert result["status"] == "completed", result
    assert abs(float(result["source_size"]) * 1e6 - size) < 10


def test_over_quota_and_over_size_uploads_are_refused_at_creation(server, media):
    client, project_id = project_client(server, "tiny")
    limits = cli(server, "limits", "tiny", "--upload-max-bytes", "2000000", "--upload-quota-bytes", "2500000")
    assert limits == {"project": "tiny", "upload_max_bytes": 2_000_000, "upload_quota_bytes": 2_500_000}
    task = client.create_task()
    folder = server.data_dir / "uploads" / str(project_id)

    big = create(endpoint(task), 2_000_001)
    assert big.status_code == 413 and "limit of 2000000 bytes" in big.text
    with pytest.raises(TusCommunicationError) as refused:  # the SDK's uploader: refused before a byte is sent
        tus_uploader.upload(file_path=str(media / "city_cc0_720x405_mpeg2.mpg"), url=endpoint(task), chunk_size=MB)
    assert refused.value.status_code == 413

    clip = media / "bbb_720p_5s_aac51.mp4"  # 1 055 736 bytes: two fit in 2.5 MB, a third does not
    kept = [tus_uploader.upload(file_path=str(clip), url=endpoint(task), chunk_size=MB).url for _ in range(2)]
    with pytest.raises(TusCommunicationError) as refused:
        tus_uploader.upload(file_path=str(clip), url=endpoint(task), chunk_size=MB)
    assert refused.value.status_code == 413 and b"quota" in refused.value.response_content
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == sorted(
        [u[4:] for u in kept] + [u[4:] + ".info" for u in kept])  # nothing was made for the refused ones

    # deleting an upload (tus termination) gives its room back
    gone = httpx.delete(f"{endpoint(task)}/{kept[0][4:]}", headers=TUS)
    assert gone.status_code == 204 and not stored(server, kept[0][4:])
    third = tus_uploader.upload(file_path=str(clip), url=endpoint(task), chunk_size=MB)
    assert third.status == "Ok"


def test_uploads_are_invisible_to_other_projects(server, client, media):
    mine = client.create_task()
    source = media / "carphone_qcif_sar.mp4"
    uid = tus_uploader.upload(file_path=str(source), url=endpoint(mine), chunk_size=MB).url[4:]
    theirs_client, _ = project_client(server, "other")
    theirs = theirs_client.create_task()
    foreign = f"{endpoint(theirs)}/{uid}"

    assert httpx.head(foreign, headers=TUS).status_code == 404
    assert patch(foreign, source.stat().st_size, b"x").status_code == 404
    assert httpx.delete(foreign, headers=TUS).status_code == 404
    theirs.custom_start({"query": {"source": f"tus:{uid}", "format": [{"output": "metadata"}]}})
    assert theirs.error == 14 and "no such upload in this project" in theirs.message, theirs.message

    sibling = client.create_task()  # the same project's other tasks may use it: the boundary is the project
    sibling.custom_start({"query": {"source": f"tus:{uid}", "format": [{"output": "metadata"}]}})
    assert not sibling.error, sibling.message
    assert wait_task(sibling)["status"] == "completed"

    own = f"{endpoint(mine)}/{uid}"
    nothing_served = httpx.get(own)  # not even the owner downloads uploads: they are only task sources
    assert nothing_served.status_code == 405 and source.read_bytes()[:64] not in nothing_served.content
    head = httpx.head(own, headers=TUS)
    assert head.status_code == 200 and int(head.headers["upload-offset"]) == source.stat().st_size
    assert sha256(stored(server, uid)[0]) == sha256(source)

    assert create(f"{server.url}/v1/upload_file/{'0' * 32}", 10).status_code == 404  # not a task
    assert create(f"{server.url}/v1/upload_file/..", 10).status_code == 404


def test_incomplete_uploads_and_started_tasks_are_refused(server, client, media):
    task = client.create_task()
    made = create(endpoint(task), 1000)
    assert made.status_code == 201
    assert patch(made.headers["location"], 0, b"\0" * 400).status_code == 204
    assert patch(made.headers["location"], 0, b"\0" * 10).status_code == 409  # the offset is the server's
    uid = made.headers["location"].rsplit("/", 1)[1]
    task.custom_start({"query": {"source": f"tus:{uid}", "format": [{"output": "metadata"}]}})
    assert task.error == 14 and "incomplete (400 of 1000 bytes)" in task.message, task.message

    done = client.create_task()
    uid = tus_uploader.upload(file_path=str(media / "carphone_qcif_sar.mp4"), url=endpoint(done)).url
    done.custom_start({"query": {"source": uid, "format": [{"output": "metadata"}]}})
    assert not done.error, done.message
    late = create(endpoint(done), 10)
    assert late.status_code == 403 and "started" in late.text


def test_expired_uploads_are_deleted(tmp_path):
    env = {"VIDMILL_UPLOAD_TTL_SECONDS": "1", "VIDMILL_UPLOAD_SWEEP_SECONDS": "0.2"}
    with VidmillServer(tmp_path / "vidmill", env=env) as server:
        client = Client(server.api_key, api_url=server.url + "/")
        task = client.create_task()
        made = create(endpoint(task), 1000)
        assert made.status_code == 201
        assert patch(made.headers["location"], 0, b"\1" * 500).status_code == 204
        uid = made.headers["location"].rsplit("/", 1)[1]
        assert len(stored(server, uid)) == 2
        deadline = time.monotonic() + 15
        while stored(server, uid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stored(server, uid) == []
        assert httpx.head(made.headers["location"], headers=TUS).status_code == 404
        assert patch(made.headers["location"], 500, b"\1" * 500).status_code == 404
        task.custom_start({"query": {"source": f"tus:{uid}", "format": [{"output": "metadata"}]}})
        assert task.error == 14 and "expired" in task.message, task.message


def test_an_upload_survives_the_server_killed_mid_patch(tmp_path, media):
    """The library appends a PATCH's bytes as they come and records the offset at the end: after a kill -9 the
    file holds bytes the recorded offset does not, and the client resends them. They must not land twice."""
    source = media / "bbb_trailer_720p_55s_mp3.mp4"
    data = source.read_bytes()
    with VidmillServer(tmp_path / "vidmill") as server:
        task = Client(server.api_key, api_url=server.url + "/").create_task()
        url = create(endpoint(task), len(data)).headers["location"]
        uid = url.rsplit("/", 1)[1]

        killed = threading.Event()

        def body():
            yield data[:MB]
            yield data[MB:2 * MB]
            killed.wait(30)  # the server is killed meanwhile
            raise ConnectionAbortedError("the server is gone")

        def send():
            try:
                httpx.patch(url, content=body(), timeout=60, headers={
                    **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(len(data))})
            except (httpx.HTTPError, ConnectionAbortedError):
                pass

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        deadline = time.monotonic() + 20
        while not (stored(server, uid) and stored(server, uid)[0].stat().st_size >= 2 * MB):
            assert time.monotonic() < deadline, "the first 2 MB never reached the upload"
            time.sleep(0.05)
        server.kill9()
        killed.set()
        sender.join(timeout=30)
        assert stored(server, uid)[0].stat().st_size == 2 * MB
        server.start()
        assert httpx.head(url, headers=TUS).headers["upload-offset"] == "0"  # what the library had recorded
        resumed = tus_client.TusClient(url=endpoint(task)).uploader(file_path=str(source), url=url, chunk_size=MB)
        assert resumed.offset == 0
        resumed.upload()
        assert sha256(stored(server, uid)[0]) == sha256(source)
        task.custom_start({"query": {"source": f"tus:{uid}", "format": [{"output": "metadata"}]}})
        assert not task.error, task.message


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 to ``target_port`` that closes the connection once ``cut_after`` bytes have
    gone from clients to the server (counted over every connection), like a network that drops mid-upload."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.cut_after: int | None = None
        self.sent = 0
        self._lock = threading.Lock()

    def __enter__(self) -> "CuttingProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._up, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, conn), daemon=True).start()

    def _up(self, conn: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                with self._lock:
                    if self.cut_after is not None and self.sent + len(data) >= self.cut_after:
                        data, cut = data[: max(0, self.cut_after - self.sent)], True
                    else:
                        cut = False
                    self.sent += len(data)
                upstream.sendall(data)
                if cut:
                    self.sent = 0
                    break
        except OSError:
            pass
        for s in (conn, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _down(self, upstream: socket.socket, conn: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                conn.sendall(data)
        except OSError:
            pass

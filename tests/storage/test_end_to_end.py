"""Tasks through vidmill's API (Qencode's own SDK) reading their source from each storage and writing their
output there; refusals end the output in a clear error with no secret in status, callbacks or logs."""

from __future__ import annotations

import ftplib
import io
import json
import secrets
import ssl
import time

import asyncssh
import pytest
from qencode3.client import Client

from tests.integration.helpers import streams, wait_task
from tests.servers import CallbackReceiver, VidmillServer
from vidmill.net.sftp import run_coroutine
from tests.storage_servers import AZURITE_ACCOUNT, AZURITE_KEY

pytestmark = pytest.mark.integration

MEDIA = "carphone_qcif_sar.mp4"
FORMAT = {"output": "mp4", "size": "176x144", "duration": 1, "video_codec": "libx264"}


@pytest.fixture(scope="module")
def vidmill(tmp_path_factory, tls_files, azurite):
    env = {"VIDMILL_STORAGE_PLAIN_HTTP_HOSTS": "127.0.0.1", "VIDMILL_STORAGE_CA_FILE": str(tls_files[0]),
           "VIDMILL_AZURE_BLOB_ENDPOINT": f"http://127.0.0.1:{azurite.port}/{{account}}",
           "VIDMILL_UPLOAD_MAX_ATTEMPTS": "2", "VIDMILL_STORAGE_TIMEOUT": "10"}
    with VidmillServer(tmp_path_factory.mktemp("vidmill-storage"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def client(vidmill):
    c = Client(vidmill.api_key, api_url=vidmill.url + "/")
    assert not c.error, c.message
    return c


@pytest.fixture(scope="module")
def hooks():
    with CallbackReceiver() as r:
        yield r


def _run(client, hooks, source, destination):
    task = client.create_task()
    task.custom_start({"query": {"source": source, "callback_url": hooks.url,
                                 "format": [{**FORMAT, "destination": destination}]}})
    assert not task.error, task.message
    return task, wait_task(task, timeout=240)


def _check_mp4(data: bytes, tmp_path):
    path = tmp_path / f"got-{secrets.token_hex(3)}.mp4"
    path.write_bytes(data)
    info = streams(path)
    assert info["video"]["codec"] == "h264" and (info["video"]["width"], info["video"]["height"]) == (176, 144)
    assert 0.8 <= info["duration"] <= 1.3


def _s3_secret_in_url(moto_s3) -> str:
    return moto_s3.secret.replace("/", "%2F").replace("+", "%2B")


def test_s3_source_to_s3_destination(client, hooks, moto_s3, media, tmp_path):
    s3 = moto_s3.client()
    bucket = f"e2e-{secrets.token_hex(3)}"
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(media / MEDIA), bucket, f"in/{MEDIA}")
    source = f"s3://{moto_s3.key}:{_s3_secret_in_url(moto_s3)}@127.0.0.1:{moto_s3.port}/{bucket}/in/{MEDIA}"
    dest = {"url": f"s3://127.0.0.1:{moto_s3.port}/{bucket}/out/small.mp4", "key": moto_s3.key,
            "secret": moto_s3.secret, "permissions": "public-read", "storage_class": "REDUCED_REDUNDANCY",
            "cache_control": "max-age=600"}
    task, status = _run(client, hooks, source, dest)
    assert status["status"] == "completed", status["error_description"]
    [video] = status["videos"]
    assert video["url"] == f"s3://127.0.0.1:{moto_s3.port}/{bucket}/out/small.mp4"
    assert video["storage"] == {"type": "s3", "host": f"127.0.0.1:{moto_s3.port}", "bucket": bucket,
                                "key": "out/small.mp4", "format": "mp4"}
    obj = s3.get_object(Bucket=bucket, Key="out/small.mp4")
    assert obj["ContentType"] == "video/mp4" and obj["CacheControl"] == "max-age=600"
    assert obj["StorageClass"] == "REDUCED_REDUNDANCY"
    grants = s3.get_object_acl(Bucket=bucket, Key="out/small.mp4")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") and g["Permission"] == "READ" for g in grants)
    _check_mp4(obj["Body"].read(), tmp_path)
    assert float(video["size"]) * 1e6 == pytest.approx(obj["ContentLength"], abs=1)


def test_s3_fan_out_and_folder_destination(client, hooks, moto_s3, origin, tmp_path):
    # a list of destinations: the same output to a file URL in one bucket and a folder in another
    s3 = moto_s3.client()
    one, two = f"fan-{secrets.token_hex(3)}", f"fan-{secrets.token_hex(3)}"
    s3.create_bucket(Bucket=one)
    s3.create_bucket(Bucket=two)
    dests = [{"url": f"s3://127.0.0.1:{moto_s3.port}/{one}/v.mp4", "key": moto_s3.key, "secret": moto_s3.secret},
             {"url": f"b2://127.0.0.1:{moto_s3.port}/{two}/folder/", "key": moto_s3.key, "secret": moto_s3.secret}]
    _, status = _run(client, hooks, f"{origin.url}/{MEDIA}", dests)
    assert status["status"] == "completed", status["error_description"]
    assert status["videos"][0]["url"] == f"s3://127.0.0.1:{moto_s3.port}/{one}/v.mp4"
    [landed] = s3.list_objects_v2(Bucket=two, Prefix="folder/")["Contents"]
    assert landed["Key"].startswith("folder/") and landed["Key"].endswith(".mp4")
    assert s3.get_object(Bucket=one, Key="v.mp4")["Body"].read() == s3.get_object(
        Bucket=two, Key=landed["Key"])["Body"].read()


@pytest.mark.parametrize("scheme", ["ftp", "ftps"])
def test_ftp_source_to_ftp_destination(scheme, client, hooks, request, media, tls_files, tmp_path):
    srv = request.getfixturevalue(f"{scheme}_server")
    run = secrets.token_hex(3)
    (srv.root / run).mkdir()
    (srv.root / run / MEDIA).write_bytes((media / MEDIA).read_bytes())
    source = f"{scheme}://{srv.user}:{srv.password}@127.0.0.1:{srv.port}/{run}/{MEDIA}"
    dest = {"url": f"{scheme}://127.0.0.1:{srv.port}/{run}/out/small.mp4", "key": srv.user, "secret": srv.password,
            "is_passive": 1}
    _, status = _run(client, hooks, source, dest)
    assert status["status"] == "completed", status["error_description"]
    [video] = status["videos"]
    assert video["url"] == f"{scheme}://127.0.0.1:{srv.port}/{run}/out/small.mp4"
    assert video["storage"]["type"] == scheme and video["storage"]["path"] == f"{run}/out/small.mp4"
    ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(tls_files[0]))) if scheme == "ftps" \
        else ftplib.FTP()
    ftp.connect("127.0.0.1", srv.port, timeout=10)
    ftp.login(srv.user, srv.password)
    if scheme == "ftps":
        ftp.prot_p()
    buf = io.BytesIO()
    ftp.retrbinary(f"RETR {run}/out/small.mp4", buf.write)
    assert ftp.nlst(f"{run}/out") in (["small.mp4"], [f"{run}/out/small.mp4"])
    ftp.quit()
    _check_mp4(buf.getvalue(), tmp_path)


def test_sftp_source_to_sftp_destination(client, hooks, sftp_server, media, tmp_path):
    run = secrets.token_hex(3)
    (sftp_server.root / run).mkdir()
    (sftp_server.root / run / MEDIA).write_bytes((media / MEDIA).read_bytes())
    source = f"sftp://{sftp_server.user}:{sftp_server.password}@127.0.0.1:{sftp_server.port}/{run}/{MEDIA}"
    dest = {"url": f"sftp://127.0.0.1:{sftp_server.port}/{run}/out/small.mp4", "key": sftp_server.user,
            "secret": sftp_server.password}
    _, status = _run(client, hooks, source, dest)
    assert status["status"] == "completed", status["error_description"]
    assert status["videos"][0]["storage"] == {"type": "sftp", "host": f"127.0.0.1:{sftp_server.port}",
                                              "path": f"{run}/out/small.mp4", "format": "mp4"}

    async def read() -> bytes:
        async with asyncssh.connect("127.0.0.1", sftp_server.port, username=sftp_server.user,
                                    password=sftp_server.password, known_hosts=None, client_keys=[],
                                    agent_path=None, config=[]) as conn:
            async with conn.start_sftp_client() as sftp:
                async with sftp.open(f"{run}/out/small.mp4", "rb") as f:
                    return await f.read()

    _check_mp4(run_coroutine(read()), tmp_path)


def test_azblob_destination(client, hooks, azurite, origin, tmp_path):
    container = f"e2e{secrets.token_hex(3)}"
    azurite.service().create_container(container)
    dest = {"url": f"azblob://{container}/out/small.mp4", "key": AZURITE_ACCOUNT, "secret": AZURITE_KEY,
            "cache_control": "no-cache"}
    _, status = _run(client, hooks, f"{origin.url}/{MEDIA}", dest)
    assert status["status"] == "completed", status["error_description"]
    assert status["videos"][0]["url"] == f"azblob://{container}/out/small.mp4"
    blob = azurite.service().get_blob_client(container, "out/small.mp4")
    props = blob.get_blob_properties()
    assert props.content_settings.content_type == "video/mp4" and props.content_settings.cache_control == "no-cache"
    _check_mp4(blob.download_blob().readall(), tmp_path)


def _refused(client, hooks, vidmill, source, dest, secret) -> dict:
    task, status = _run(client, hooks, source, dest)
    assert status["status"] == "error" and status["error"] == 1, status
    [video] = status["videos"]
    assert video["status"] == "error" and video["error"] == 1
    deadline = time.monotonic() + 30
    while "saved" not in hooks.events(task.task_token) and time.monotonic() < deadline:
        time.sleep(0.1)  # callbacks are delivered by the outbox, a moment after the state change
    assert hooks.events(task.task_token) == ["queued", "error", "saved"]
    everything = json.dumps(status) + "".join(c.body.decode() for c in hooks.calls
                                              if c.form.get("task_token") == task.task_token)
    assert "saving outputs failed" in everything or "source download" in everything
    assert secret not in everything
    assert secret not in vidmill.log.read_text(errors="replace")
    return status


def test_wrong_secret_missing_bucket_read_only_ftp(client, hooks, vidmill, moto_s3, ftp_server, origin):
    bucket = f"err-{secrets.token_hex(3)}"
    moto_s3.client().create_bucket(Bucket=bucket)
    wrong = "wrong-" + secrets.token_hex(12)
    status = _refused(client, hooks, vidmill, f"{origin.url}/{MEDIA}",
                      {"url": f"s3://127.0.0.1:{moto_s3.port}/{bucket}/a.mp4", "key": moto_s3.key, "secret": wrong},
                      wrong)
    assert "wrong secret" in status["error_description"]
    status = _refused(client, hooks, vidmill, f"{origin.url}/{MEDIA}",
                      {"url": f"s3://127.0.0.1:{moto_s3.port}/no-such-bucket/a.mp4", "key": moto_s3.key,
                       "secret": moto_s3.secret}, moto_s3.secret)
    assert "bucket does not exist" in status["error_description"]
    status = _refused(client, hooks, vidmill, f"{origin.url}/{MEDIA}",
                      {"url": f"ftp://127.0.0.1:{ftp_server.port}/a.mp4", "key": ftp_server.ro_user,
                       "secret": ftp_server.ro_password}, ftp_server.ro_password)
    assert "no permission" in status["error_description"]
    # a source with a wrong secret: the error names the storage, never the secret in the URL
    status = _refused(client, hooks, vidmill,
                      f"s3://{moto_s3.key}:{wrong}@127.0.0.1:{moto_s3.port}/{bucket}/in.mp4",
                      {"url": f"s3://127.0.0.1:{moto_s3.port}/{bucket}/a.mp4", "key": moto_s3.key,
                       "secret": moto_s3.secret}, wrong)
    assert "source download" in status["error_description"]


@pytest.mark.parametrize(("destination", "fragment"), [
    pytest.param({"url": "s3://127.0.0.1:9/bucket/%2e%2e/other/a.mp4", "key": "k", "secret": "s"}, "'..' segment",
                 id="encoded-dotdot"),
    pytest.param({"url": "ftp://127.0.0.1:9//etc/a.mp4", "key": "k", "secret": "s"}, "single '/'", id="absolute"),
    pytest.param({"url": "s3://169.254.169.254/bucket/a.mp4", "key": "k", "secret": "s"}, "never allowed",
                 id="metadata-endpoint"),
    pytest.param([{"url": "s3://127.0.0.1:9/b/a.mp4"}, {"url": "azblob://c/a.mp4", "key": "k"}], "destination[1]",
                 id="second-of-a-list"),
])
def test_bad_destinations_are_refused_at_start(client, origin, destination, fragment):
    task = client.create_task()
    task.custom_start({"query": {"source": f"{origin.url}/{MEDIA}",
                                 "format": [{**FORMAT, "destination": destination}]}})
    assert task.error == 14 and fragment in task.message, task.message


HLS = {"output": "advanced_hls", "segment_duration": 1, "duration": 2, "stream": [{"resolution": 144}]}


class _Reader:
    """Reads what landed at a destination with that storage's official client."""

    def __init__(self, scheme, request, tls_files):
        self.scheme, self.request, self.tls_files = scheme, request, tls_files

    def setup(self, run: str) -> tuple[dict, callable, callable]:
        """(destination object for folder ``run``, read(path) -> bytes, content_type(path) -> str | None)"""
        if self.scheme in ("s3", "b2"):
            moto = self.request.getfixturevalue("moto_s3")
            s3 = moto.client()
            s3.create_bucket(Bucket=run)
            dest = {"url": f"{self.scheme}://127.0.0.1:{moto.port}/{run}/hls/", "key": moto.key,
                    "secret": moto.secret, "permissions": "public-read", "cache_control": "max-age=5"}
            return (dest, lambda p: s3.get_object(Bucket=run, Key=f"hls/{p}")["Body"].read(),
                    lambda p: s3.head_object(Bucket=run, Key=f"hls/{p}")["ContentType"])
        if self.scheme == "azblob":
            azurite = self.request.getfixturevalue("azurite")
            service = azurite.service()
            service.create_container(run)
            dest = {"url": f"azblob://{run}/hls/", "key": AZURITE_ACCOUNT, "secret": AZURITE_KEY}
            blob = lambda p: service.get_blob_client(run, f"hls/{p}")  # noqa: E731
            return (dest, lambda p: blob(p).download_blob().readall(),
                    lambda p: blob(p).get_blob_properties().content_settings.content_type)
        if self.scheme in ("ftp", "ftps"):
            srv = self.request.getfixturevalue(f"{self.scheme}_server")
            dest = {"url": f"{self.scheme}://127.0.0.1:{srv.port}/{run}/hls/", "key": srv.user, "secret": srv.password}

            def read(p):
                ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(self.tls_files[0]))) \
                    if self.scheme == "ftps" else ftplib.FTP()
                ftp.connect("127.0.0.1", srv.port, timeout=10)
                ftp.login(srv.user, srv.password)
                if self.scheme == "ftps":
                    ftp.prot_p()
                buf = io.BytesIO()
                ftp.retrbinary(f"RETR {run}/hls/{p}", buf.write)
                ftp.quit()
                return buf.getvalue()
            return dest, read, lambda p: None
        srv = self.request.getfixturevalue("sftp_server")
        dest = {"url": f"sftp://127.0.0.1:{srv.port}/{run}/hls/", "key": srv.user, "secret": srv.password}

        def read(p):
            async def go():
                async with asyncssh.connect("127.0.0.1", srv.port, username=srv.user, password=srv.password,
                                            known_hosts=None, client_keys=[], agent_path=None, config=[]) as conn:
                    async with conn.start_sftp_client() as sftp:
                        async with sftp.open(f"{run}/hls/{p}", "rb") as f:
                            return await f.read()
            return run_coroutine(go())
        return dest, read, lambda p: None


@pytest.mark.parametrize("scheme", ["s3", "azblob", "ftp", "ftps", "sftp"])
def test_hls_folder_lands_whole(scheme, client, hooks, origin, request, tls_files, tmp_path):
    run = f"hls{secrets.token_hex(3)}"
    dest, read, content_type = _Reader(scheme, request, tls_files).setup(run)
    task = client.create_task()
    task.custom_start({"query": {"source": f"{origin.url}/{MEDIA}", "format": [{**HLS, "destination": dest}]}})
    assert not task.error, task.message
    status = wait_task(task, timeout=240)
    assert status["status"] == "completed", status["error_description"]
    [video] = status["videos"]
    assert video["url"].endswith("/hls/playlist.m3u8") and video["storage"]["type"] == scheme
    # every playlist names only files that landed, and the segments are real MPEG-TS
    master = read("playlist.m3u8").decode()
    assert master.startswith("#EXTM3U") and "#EXT-X-STREAM-INF" in master
    playlists = [line for line in master.splitlines() if line and not line.startswith("#")]
    playlists += [m.split('URI="', 1)[1].split('"', 1)[0] for m in master.splitlines() if 'URI="' in m]
    segments = []
    for playlist in playlists:
        folder = playlist.rsplit("/", 1)[0] + "/" if "/" in playlist else ""
        text = read(playlist).decode()
        segments += [folder + line for line in text.splitlines() if line and not line.startswith("#")]
    assert segments
    for segment in segments:
        data = read(segment)
        assert data[:1] == b"\x47" or data[4:8] in (b"ftyp", b"styp", b"moof"), segment
    if scheme in ("ftp", "ftps"):  # segments, then the chunklists naming them, then the master naming those
        landed = request.getfixturevalue(f"{scheme}_server").renamed(run)
        assert landed[-1] == "hls/playlist.m3u8", landed
        chunklists = [i for i, p in enumerate(landed) if p.endswith("chunklist.m3u8")]
        assert chunklists and max(i for i, p in enumerate(landed) if p.endswith(".ts")) < min(chunklists)
    if scheme in ("s3", "azblob"):
        assert content_type("playlist.m3u8") == "application/vnd.apple.mpegurl"
        assert content_type(segments[0]) in ("video/mp2t", "video/iso.segment", "video/mp4", "audio/mp4")

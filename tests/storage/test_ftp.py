"""ftp:// and ftps:// (explicit TLS) source and destination against pyftpdlib, checked with ftplib."""

from __future__ import annotations

import ftplib
import io
import secrets
import ssl

import pytest

from vidmill import destinations, sources
from vidmill.config import Settings
from vidmill.destinations import OutputFile, Target
from vidmill.errors import SourceError, StorageError

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path, tls_files):
    return Settings(data_dir=tmp_path, allow_private_networks=True, storage_ca_file=tls_files[0],
                    upload_max_attempts=2, storage_timeout=10)


@pytest.fixture(params=["ftp", "ftps"])
def server(request):
    return request.getfixturevalue(f"{request.param}_server"), request.param


def _client(server, scheme, tls_files, user=None, password=None):
    if scheme == "ftps":
        ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(tls_files[0])))
    else:
        ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", server.port, timeout=10)
    ftp.login(user or server.user, password or server.password)
    if scheme == "ftps":
        ftp.prot_p()
    return ftp


def _read(ftp, path) -> bytes:
    buf = io.BytesIO()
    ftp.retrbinary(f"RETR {path}", buf.write)
    return buf.getvalue()


def _out(tmp_path, name, size):
    path = tmp_path / name.replace("/", "_")
    path.write_bytes(secrets.token_bytes(size))
    return OutputFile(name, path)


def test_single_file_and_folder(server, settings, tmp_path, tls_files):
    srv, scheme = server
    run = secrets.token_hex(3)
    single = _out(tmp_path, "video.mp4", 3 * 1024**2 + 5)
    target = Target(url=f"{scheme}://127.0.0.1:{srv.port}/{run}/deep/er/video.mp4", key=srv.user, secret=srv.password)
    [landed] = destinations.put([single], target, settings=settings)
    assert landed.url == f"{scheme}://127.0.0.1:{srv.port}/{run}/deep/er/video.mp4"
    assert landed.storage == {"type": scheme, "host": f"127.0.0.1:{srv.port}", "path": f"{run}/deep/er/video.mp4"}
    files = [_out(tmp_path, n, 500 + i) for i, n in enumerate(["master.m3u8", "720p/index.m3u8", "720p/s0.ts"])]
    # credentials in the URL work too (percent-encoded), and never show in what is returned
    url = f"{scheme}://{srv.user}:{srv.password}@127.0.0.1:{srv.port}/{run}/hls/"
    landed = destinations.put(files, Target(url=url), settings=settings)
    assert all(srv.password not in f.url and srv.user not in f.url for f in landed)
    ftp = _client(srv, scheme, tls_files)
    try:
        assert _read(ftp, f"{run}/deep/er/video.mp4") == single.path.read_bytes()
        for f in files:
            assert _read(ftp, f"{run}/hls/{f.name}") == f.path.read_bytes()
        assert sorted(ftp.nlst(f"{run}/hls/720p")) == ["index.m3u8", "s0.ts"]  # no temporary file left
    finally:
        ftp.quit()


def test_read_only_account_is_refused_clearly(server, settings, tmp_path, tls_files):
    srv, scheme = server
    target = Target(url=f"{scheme}://127.0.0.1:{srv.port}/out/a.mp4", key=srv.ro_user, secret=srv.ro_password)
    with pytest.raises(StorageError) as err:
        destinations.put([_out(tmp_path, "a.mp4", 100)], target, settings=settings)
    assert "no permission" in err.value.message and "a.mp4" in err.value.message
    assert srv.ro_password not in err.value.message
    assert list(srv.readonly.rglob("*")) == []  # no temporary file left behind either


def test_wrong_password(server, settings, tmp_path):
    srv, scheme = server
    target = Target(url=f"{scheme}://127.0.0.1:{srv.port}/out/a.mp4", key=srv.user, secret="not-the-password-42")
    with pytest.raises(StorageError, match="login refused") as err:
        destinations.put([_out(tmp_path, "a.mp4", 10)], target, settings=settings)
    assert "not-the-password-42" not in err.value.message


def test_source(server, settings, tmp_path):
    srv, scheme = server
    body = secrets.token_bytes(2 * 1024**2 + 3)
    (srv.root / "in").mkdir(exist_ok=True)
    (srv.root / "in" / "clip one.mp4").write_bytes(body)
    url = f"{scheme}://{srv.user}:{srv.password}@127.0.0.1:{srv.port}/in/clip%20one.mp4"
    sources.vet(url, settings=settings)
    result = sources.fetch(url, tmp_path / "source", settings=settings)
    assert result.size == len(body) and (tmp_path / "source").read_bytes() == body
    with pytest.raises(SourceError, match="no such file|refused"):
        sources.fetch(url.replace("clip%20one", "missing"), tmp_path / "s2", settings=settings)
    assert not (tmp_path / "s2").exists() and not (tmp_path / "s2.part").exists()


def test_ftps_refuses_an_untrusted_certificate(ftps_server, tmp_path):
    settings = Settings(data_dir=tmp_path, allow_private_networks=True, upload_max_attempts=1, storage_timeout=10)
    target = Target(url=f"ftps://127.0.0.1:{ftps_server.port}/a.mp4", key=ftps_server.user,
                    secret=ftps_server.password)
    with pytest.raises(StorageError, match="certificate not trusted"):
        destinations.put([_out(tmp_path, "a.mp4", 10)], target, settings=settings)


def test_transient_failure_retries_and_an_abandoned_upload_leaves_no_file(ftp_server, settings, tmp_path,
                                                                           monkeypatch):
    real_storbinary = ftplib.FTP.storbinary
    calls = []

    def flaky(self, cmd, fp, blocksize=8192, callback=None, rest=None):
        calls.append(cmd)
        if len(calls) == 1:  # half the file goes over, then the server says "try again later"
            conn = self.transfercmd(cmd)
            conn.sendall(fp.read(1000))
            conn.close()
            self.voidresp()
            raise ftplib.error_temp("421 Service not available, closing control connection")
        return real_storbinary(self, cmd, fp, blocksize, callback, rest)

    monkeypatch.setattr(ftplib.FTP, "storbinary", flaky)
    run = secrets.token_hex(3)
    out = _out(tmp_path, "a.mp4", 50_000)
    target = Target(url=f"ftp://127.0.0.1:{ftp_server.port}/{run}/a.mp4", key=ftp_server.user,
                    secret=ftp_server.password)
    destinations.put([out], target, settings=settings)
    assert len(calls) == 2
    assert sorted(p.name for p in (ftp_server.root / run).iterdir()) == ["a.mp4"]  # the half file was removed
    assert (ftp_server.root / run / "a.mp4").read_bytes() == out.path.read_bytes()


def test_active_mode(ftp_server, settings, tmp_path):
    out = _out(tmp_path, "active.mp4", 70_000)
    run = secrets.token_hex(3)
    target = Target(url=f"ftp://127.0.0.1:{ftp_server.port}/{run}/active.mp4", key=ftp_server.user,
                    secret=ftp_server.password, is_passive=False)
    destinations.put([out], target, settings=settings)
    assert (ftp_server.root / run / "active.mp4").read_bytes() == out.path.read_bytes()

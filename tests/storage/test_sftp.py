"""sftp:// source and destination against an asyncssh SFTP server, checked with asyncssh's own client."""

from __future__ import annotations

import secrets

import asyncssh
import pytest

from vidmill import destinations, sources
from vidmill.config import Settings
from vidmill.destinations import OutputFile, Target
from vidmill.net.sftp import run_coroutine
from vidmill.errors import SourceError, StorageError

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path, allow_private_networks=True, upload_max_attempts=2, storage_timeout=10)


def _out(tmp_path, name, size):
    path = tmp_path / name.replace("/", "_")
    path.write_bytes(secrets.token_bytes(size))
    return OutputFile(name, path)


def _read_all(server, paths):
    async def go():
        async with asyncssh.connect("127.0.0.1", server.port, username=server.user, password=server.password,
                                    known_hosts=None, client_keys=[], agent_path=None, config=[]) as conn:
            async with conn.start_sftp_client() as sftp:
                out = {}
                for p in paths:
                    async with sftp.open(p, "rb") as f:
                        out[p] = await f.read()
                return out, sorted(await sftp.listdir(paths[-1].rsplit("/", 1)[0]))
    return run_coroutine(go())


def test_single_file_and_folder(sftp_server, settings, tmp_path):
    run = secrets.token_hex(3)
    single = _out(tmp_path, "video.mp4", 3 * 1024**2 + 1)
    target = Target(url=f"sftp://127.0.0.1:{sftp_server.port}/{run}/out/video.mp4", key=sftp_server.user,
                    secret=sftp_server.password)
    [landed] = destinations.put([single], target, settings=settings)
    assert landed.storage == {"type": "sftp", "host": f"127.0.0.1:{sftp_server.port}", "path": f"{run}/out/video.mp4"}
    files = [_out(tmp_path, n, 700 + i) for i, n in enumerate(["master.m3u8", "360p/index.m3u8", "360p/s0.ts"])]
    url = f"sftp://{sftp_server.user}:{sftp_server.password}@127.0.0.1:{sftp_server.port}/{run}/hls/"
    landed = destinations.put(files, Target(url=url), settings=settings)
    assert all(sftp_server.password not in f.url for f in landed)
    got, listing = _read_all(sftp_server, [f"{run}/out/video.mp4"] + [f"{run}/hls/{f.name}" for f in files])
    assert got[f"{run}/out/video.mp4"] == single.path.read_bytes()
    for f in files:
        assert got[f"{run}/hls/{f.name}"] == f.path.read_bytes()
    assert listing == [".", "..", "index.m3u8", "s0.ts"] or listing == ["index.m3u8", "s0.ts"]


def test_wrong_password_and_refused_path(sftp_server, settings, tmp_path):
    target = Target(url=f"sftp://127.0.0.1:{sftp_server.port}/a.mp4", key=sftp_server.user, secret="nope-secret-77")
    with pytest.raises(StorageError, match="login refused") as err:
        destinations.put([_out(tmp_path, "a.mp4", 10)], target, settings=settings)
    assert "nope-secret-77" not in err.value.message
    blocker = sftp_server.root / f"file-{secrets.token_hex(2)}"
    blocker.write_text("a file, not a folder")
    target = Target(url=f"sftp://127.0.0.1:{sftp_server.port}/{blocker.name}/a.mp4", key=sftp_server.user,
                    secret=sftp_server.password)
    with pytest.raises(StorageError, match="a.mp4 to sftp destination"):
        destinations.put([_out(tmp_path, "a.mp4", 10)], target, settings=settings)


def test_source(sftp_server, settings, tmp_path):
    body = secrets.token_bytes(1024**2 + 9)
    (sftp_server.root / "in").mkdir(exist_ok=True)
    (sftp_server.root / "in" / "clip.mp4").write_bytes(body)
    url = f"sftp://{sftp_server.user}:{sftp_server.password}@127.0.0.1:{sftp_server.port}/in/clip.mp4"
    sources.vet(url, settings=settings)
    result = sources.fetch(url, tmp_path / "source", settings=settings)
    assert result.size == len(body) and (tmp_path / "source").read_bytes() == body
    with pytest.raises(SourceError, match="no such file"):
        sources.fetch(url.replace("clip", "nope"), tmp_path / "s2", settings=settings)
    assert not (tmp_path / "s2").exists() and not (tmp_path / "s2.part").exists()


def test_works_when_called_inside_a_running_event_loop(sftp_server, settings, tmp_path):
    import asyncio

    out = _out(tmp_path, "loop.mp4", 1000)
    target = Target(url=f"sftp://127.0.0.1:{sftp_server.port}/loop/loop.mp4", key=sftp_server.user,
                    secret=sftp_server.password)

    async def inside():  # e.g. a caller in async code, or a test framework that left a loop running
        return destinations.put([out], target, settings=settings)

    [landed] = asyncio.run(inside())
    assert landed.storage["path"] == "loop/loop.mp4"
    assert (sftp_server.root / "loop" / "loop.mp4").read_bytes() == out.path.read_bytes()


def _known_hosts(folder, server, key):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "known_hosts"
    public = key.export_public_key("openssh").decode().strip()
    path.write_text(f"[127.0.0.1]:{server.port} {public}\n")
    return path


def test_known_hosts_accepts_the_listed_key_and_refuses_another(sftp_server, tmp_path):
    out = _out(tmp_path, "k.mp4", 100)
    target = Target(url=f"sftp://127.0.0.1:{sftp_server.port}/kh/k.mp4", key=sftp_server.user,
                    secret=sftp_server.password)
    right = _known_hosts(tmp_path / "right", sftp_server, asyncssh.read_private_key(str(sftp_server.host_key)))
    ok = Settings(data_dir=tmp_path, allow_private_networks=True, storage_timeout=10, sftp_known_hosts=right)
    [landed] = destinations.put([out], target, settings=ok)
    assert (sftp_server.root / "kh" / "k.mp4").read_bytes() == out.path.read_bytes()

    other = _known_hosts(tmp_path / "other", sftp_server, asyncssh.generate_private_key("ssh-ed25519"))
    bad = Settings(data_dir=tmp_path, allow_private_networks=True, storage_timeout=10, upload_max_attempts=3,
                   sftp_known_hosts=other)
    with pytest.raises(StorageError, match="host key is not the one VIDMILL_SFTP_KNOWN_HOSTS lists") as err:
        destinations.put([_out(tmp_path, "k2.mp4", 10)], target, settings=bad)
    assert sftp_server.password not in err.value.message
    source = f"sftp://{sftp_server.user}:{sftp_server.password}@127.0.0.1:{sftp_server.port}/kh/k.mp4"
    with pytest.raises(SourceError, match="host key"):
        sources.fetch(source, tmp_path / "src", settings=bad)
    assert not (sftp_server.root / "kh" / "k2.mp4").exists()

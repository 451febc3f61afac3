"""azblob:// destination against Azurite (npm), checked with azure-storage-blob."""

from __future__ import annotations

import secrets

import pytest

from tests.storage_servers import AZURITE_ACCOUNT, AZURITE_KEY
from vidmill import destinations
from vidmill.config import Settings
from vidmill.destinations import OutputFile, Target
from vidmill.errors import StorageError

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path, azurite):
    return Settings(data_dir=tmp_path, allow_private_networks=True, storage_plain_http_hosts="127.0.0.1",
                    azure_blob_endpoint=f"http://127.0.0.1:{azurite.port}/{{account}}", upload_part_size=5 * 1024**2,
                    upload_max_attempts=1, storage_timeout=10)


@pytest.fixture
def container(azurite):
    name = f"c{secrets.token_hex(4)}"
    azurite.service().create_container(name)
    return name


def _out(tmp_path, name, size):
    path = tmp_path / name.replace("/", "_")
    path.write_bytes(secrets.token_bytes(size))
    return OutputFile(name, path)


def test_single_file_and_folder(azurite, container, settings, tmp_path):
    single = _out(tmp_path, "video.mp4", 11 * 1024**2 + 3)  # three blocks
    target = Target(url=f"azblob://{container}/out/video.mp4", key=AZURITE_ACCOUNT, secret=AZURITE_KEY,
                    cache_control="public, max-age=60", storage_class="COOL")
    [landed] = destinations.put([single], target, settings=settings)
    assert landed.url == f"azblob://{container}/out/video.mp4"
    assert landed.storage == {"type": "azblob", "account": AZURITE_ACCOUNT, "container": container,
                              "key": "out/video.mp4"}
    files = [_out(tmp_path, n, 300 + i) for i, n in enumerate(["manifest.mpd", "v/init.mp4", "v/seg_1.m4s"])]
    destinations.put(files, Target(url=f"azblob://{container}/dash/", key=AZURITE_ACCOUNT, secret=AZURITE_KEY),
                     settings=settings)
    service = azurite.service()
    blob = service.get_blob_client(container, "out/video.mp4")
    assert blob.download_blob().readall() == single.path.read_bytes()
    props = blob.get_blob_properties()
    assert props.content_settings.content_type == "video/mp4"
    assert props.content_settings.cache_control == "public, max-age=60"
    assert props.blob_tier == "Cool"
    names = sorted(b.name for b in service.get_container_client(container).list_blobs(name_starts_with="dash/"))
    assert names == ["dash/manifest.mpd", "dash/v/init.mp4", "dash/v/seg_1.m4s"]
    mpd = service.get_blob_client(container, "dash/manifest.mpd")
    assert mpd.get_blob_properties().content_settings.content_type == "application/dash+xml"
    assert mpd.download_blob().readall() == files[0].path.read_bytes()


def test_wrong_key_and_missing_container(azurite, container, settings, tmp_path):
    wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
    with pytest.raises(StorageError, match="wrong account key|access denied") as err:
        destinations.put([_out(tmp_path, "a.mp4", 10)],
                         Target(url=f"azblob://{container}/a.mp4", key=AZURITE_ACCOUNT, secret=wrong), settings=settings)
    assert wrong not in err.value.message and AZURITE_KEY not in err.value.message
    with pytest.raises(StorageError, match="container does not exist"):
        destinations.put([_out(tmp_path, "a.mp4", 10)],
                         Target(url="azblob://no-such-container/a.mp4", key=AZURITE_ACCOUNT, secret=AZURITE_KEY),
                         settings=settings)


def test_a_secret_that_is_no_account_key_is_refused_without_echo(container, settings, tmp_path):
    with pytest.raises(StorageError, match="access key \\(base64\\)") as err:
        destinations.put([_out(tmp_path, "a.mp4", 10)],
                         Target(url=f"azblob://{container}/a.mp4", key=AZURITE_ACCOUNT, secret="not base64 at all!"),
                         settings=settings)
    assert "not base64 at all" not in err.value.message

"""Session-wide real storage servers (started on first use, stopped at the end)."""

from __future__ import annotations

import pytest

from tests.servers import StaticServer
from tests.storage_servers import Azurite, FtpServer, MotoS3, SftpServer, make_tls_cert


@pytest.fixture(scope="session")
def storage_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("storage-servers")


@pytest.fixture(scope="session")
def moto_s3(storage_tmp):
    server = MotoS3(storage_tmp)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_open(storage_tmp):
    """moto without signature checks: presigned URLs work against it."""
    server = MotoS3(storage_tmp, auth=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_files(storage_tmp):
    return make_tls_cert(storage_tmp / "tls")


@pytest.fixture(scope="session")
def ftp_server(storage_tmp):
    server = FtpServer(storage_tmp)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ftps_server(storage_tmp, tls_files):
    _, cert, key = tls_files
    server = FtpServer(storage_tmp, tls=True, cert=cert, key=key)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sftp_server(storage_tmp):
    server = SftpServer(storage_tmp)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite(storage_tmp):
    server = Azurite(storage_tmp)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def origin(media):
    """The test media over plain HTTP (a source for tasks whose destination is under test)."""
    with StaticServer(media) as server:
        yield server

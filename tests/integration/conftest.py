from __future__ import annotations

import pytest

from tests.servers import CallbackReceiver, StaticServer, VidmillServer


@pytest.fixture(scope="session")
def origin(media, tmp_path_factory):
    """An HTTP origin serving the real test media plus a few non-media files."""
    root = tmp_path_factory.mktemp("origin")
    for f in media.iterdir():
        if f.is_file():
            (root / f.name).symlink_to(f)
    (root / "notes.txt").write_text("this is not a video\n" * 50)
    with StaticServer(root) as server:
        yield server


@pytest.fixture(scope="session")
def receiver():
    with CallbackReceiver() as r:
        yield r


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    with VidmillServer(tmp_path_factory.mktemp("vidmill")) as s:
        yield s

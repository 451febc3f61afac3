"""Fixtures for the player tests: one headless Chromium for the package, ladders made with FFmpeg."""

from __future__ import annotations

import pytest

from tests.players.harness import MediaServer, Players, missing_installs
from tests.players.ladders import make_ladders


@pytest.fixture(scope="package")  # Playwright's sync API keeps an event loop running until it stops
def players():
    missing = missing_installs()
    if missing:
        pytest.fail("missing for the player tests (`make test` installs them): " + ", ".join(missing))
    with Players() as p:
        yield p


@pytest.fixture(scope="session")
def ladder_dir(media, tmp_path_factory):
    root = tmp_path_factory.mktemp("ladders")
    make_ladders(media, root)
    return root


@pytest.fixture(scope="session")
def ladder_server(ladder_dir):
    with MediaServer(ladder_dir) as server:
        yield server

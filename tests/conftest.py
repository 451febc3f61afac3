"""Shared fixtures: where the real test media live, fresh data dirs."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEDIA = (ROOT.parent / "shared" / "media").resolve()


@pytest.fixture(scope="session")
def media() -> Path:
    """``../shared/media`` (real footage; never copied into the repo)."""
    if not MEDIA.is_dir():
        pytest.fail(f"test media not found at {MEDIA}: CI needs ../shared beside the checkout")
    return MEDIA


_REAL_CONNECT = socket.socket.connect


@pytest.fixture
def loopback_only(monkeypatch):
    """Unknown outbound traffic is an error: a test using this may connect to loopback only."""

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not ipaddress.ip_address(address[0]).is_loopback:
            raise AssertionError(f"unexpected outbound connection to {address}")
        return _REAL_CONNECT(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)

"""Shared fixtures: where the real test media live, fresh data dirs."""

from __future__ import annotations

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

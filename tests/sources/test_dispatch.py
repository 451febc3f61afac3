"""sources.fetch dispatches by scheme; a scheme without a module is refused, never a crash."""

from __future__ import annotations

import pytest

from vidmill import sources
from vidmill.errors import UrlRefused


def test_each_scheme_has_its_module():
    assert sources.module_for("https://example.com/a.mp4").__name__ == "vidmill.sources.http"
    assert sources.REGISTRY["tus"] == "vidmill.sources.tus"
    assert {"s3", "ftp", "ftps", "sftp", "http", "https", "tus"} <= set(sources.REGISTRY)


@pytest.mark.parametrize("url", ["gopher://h/x", "file:///etc/passwd", "nothing"])
def test_unknown_schemes_are_refused(url, tmp_path):
    with pytest.raises(UrlRefused, match="not supported"):
        sources.fetch(url, tmp_path / "source", settings=None)


def test_a_registered_module_that_is_missing_is_refused(monkeypatch, tmp_path):
    monkeypatch.setitem(sources.REGISTRY, "zz", "vidmill.sources.not_there")
    with pytest.raises(UrlRefused, match="not supported by this server"):
        sources.fetch("zz:abc", tmp_path / "source", settings=None)

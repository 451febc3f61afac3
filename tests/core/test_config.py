from __future__ import annotations

import pytest
from pydantic import ValidationError

from vidmill.config import Settings


def test_defaults_follow_host_port_and_data_dir(tmp_path):
    s = Settings(data_dir=tmp_path, host="0.0.0.0", port=9000)
    assert s.public_url == "http://127.0.0.1:9000"
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'vidmill.db'}"
    assert Settings(data_dir=tmp_path, public_url="https://media.example.com/").public_url == "https://media.example.com"


@pytest.mark.parametrize("key", ["short", "has space in it", "x" * 129, "semi;colon-key"])
def test_an_api_key_that_could_never_log_in_is_refused_at_start(tmp_path, key):
    with pytest.raises(ValidationError, match="VIDMILL_API_KEY"):
        Settings(data_dir=tmp_path, api_key=key)


def test_env_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDMILL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VIDMILL_WORKERS", "3")
    monkeypatch.setenv("VIDMILL_ALLOW_PRIVATE_NETWORKS", "1")
    s = Settings()
    assert s.data_dir == tmp_path.resolve() and s.workers == 3 and s.allow_private_networks is True

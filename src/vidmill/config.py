"""The one Settings object. Every knob is an environment variable prefixed ``VIDMILL_``."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

API_KEY_RE = re.compile(r"^[A-Za-z0-9_\-\.]{8,128}$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDMILL_", extra="ignore")

    data_dir: Path = Field(default=Path("./vidmill-data"))
    database_url: str = ""  # default: sqlite:///DATA_DIR/vidmill.db
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # default: http://HOST:PORT
    api_key: str = ""  # if set, a default project with this key exists
    workers: int = Field(default=1, ge=1, le=64)
    allow_private_networks: bool = False
    # Octet v0: the S3-compatible endpoint its destinations write to (default: AWS, s3.<region>.amazonaws.com)
    octet_s3_endpoint: str = ""
    # e-mail notifications (TransparentEdge orders); no host: orders asking for e-mail are refused
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "vidmill@localhost"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: str = Field(default="none", pattern="^(none|starttls|ssl)$")

    # limits and timings (rarely changed)
    max_source_bytes: int = 20 * 1024**3
    source_connect_timeout: float = 10.0
    source_read_timeout: float = 60.0
    source_total_timeout: float = 6 * 3600.0  # a whole download, however slowly it trickles
    session_ttl_seconds: int = 24 * 3600
    lease_seconds: float = 30.0
    max_attempts: int = 3
    job_timeout_seconds: float = 6 * 3600
    callback_timeout: float = 10.0
    callback_max_attempts: int = 8
    max_request_bytes: int = 2 * 1024**2
    poll_interval: float = 0.5

    @field_validator("api_key")
    @classmethod
    def _api_key_shape(cls, value: str) -> str:
        # the same shape access_token accepts: a key that could never log in is refused at start
        if value and not API_KEY_RE.match(value):
            raise ValueError("VIDMILL_API_KEY must be 8-128 characters of A-Z a-z 0-9 _ - .")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> "Settings":
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'vidmill.db'}"
        if not self.public_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
            self.public_url = f"http://{host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        return self

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

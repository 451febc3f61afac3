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
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = ""  # default: http://HOST:PORT
    api_key: str = ""  # if set, a default project with this key exists
    workers: int = Field(default=1, ge=1, le=64)
    allow_private_networks: bool = False
    # Octet v0: the S3-compatible endpoint its destinations write to (default: AWS, s3.<region>.amazonaws.com)
    octet_s3_endpoint: str = ""
    # h264_nvenc for formats asking for hardware (Octet jobs): "auto" runs it where a one-frame trial encode
    # passes on this host (checked once per process); "off" never does
    nvenc: str = Field(default="auto", pattern="^(auto|off)$")
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
    # callbacks are retried with exponential backoff (base doubling up to max_delay, with jitter) for
    # callback_retry_horizon seconds after their event (default 3 days, as Stripe does), then given up
    callback_retry_horizon: float = Field(default=3 * 24 * 3600.0, ge=0)
    callback_retry_base: float = Field(default=5.0, gt=0)
    callback_retry_max_delay: float = Field(default=3600.0, gt=0)
    max_request_bytes: int = 2 * 1024**2
    poll_interval: float = 0.5
    # direct (TUS) uploads: defaults for projects that set no limits of their own
    upload_max_bytes: int = 20 * 1024**3  # one upload
    upload_quota_bytes: int = 100 * 1024**3  # all live uploads of a project together
    upload_max_count: int = 10_000  # live uploads of a project (tiny uploads must not fill the disk's inodes)
    upload_ttl_seconds: int = 24 * 3600  # an upload (finished or not) is deleted this long after its creation
    upload_sweep_seconds: float = 60.0

    # storage (sources and destinations other than http and vidmill's own)
    storage_plain_http_hosts: str = ""  # "host" or "host:port", comma-separated: S3/Azure endpoints over http
    storage_ca_file: Path | None = None  # extra CA bundle for TLS to storage (FTPS, S3, Azure)
    azure_blob_endpoint: str = "https://{account}.blob.core.windows.net"
    storage_timeout: float = 60.0  # connect / per-operation read timeout
    # OpenSSH known_hosts file: when set, an SFTP server must present a host key listed there under the URL's
    # host name (as `host` or `[host]:port`), or nothing is sent to it; unset, host keys are not checked
    sftp_known_hosts: Path | None = None
    upload_part_size: int = Field(default=8 * 1024**2, ge=5 * 1024**2)  # S3 multipart part, Azure block
    upload_concurrency: int = Field(default=4, ge=1, le=32)  # parts (and files) in flight
    upload_max_attempts: int = Field(default=4, ge=1, le=10)  # transient failures retried with backoff

    @field_validator("api_key")
    @classmethod
    def _api_key_shape(cls, value: str) -> str:
        # the same shape access_token accepts: a key that could never log in is refused at start
        if value and not API_KEY_RE.match(value):
            raise ValueError("VIDMILL_API_KEY must be 8-128 characters of A-Z a-z 0-9 _ - .")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> "Settings":
        if self.callback_retry_max_delay < self.callback_retry_base:
            raise ValueError("VIDMILL_CALLBACK_RETRY_MAX_DELAY must be >= VIDMILL_CALLBACK_RETRY_BASE")
        self.data_dir = self.data_dir.expanduser().resolve()
        if self.octet_s3_endpoint.lower().startswith("http://"):
            # an endpoint the operator configured over plain http (an emulator, a private gateway) is reached so
            netloc = self.octet_s3_endpoint.split("://", 1)[1].split("/", 1)[0].lower()
            listed = [h.strip() for h in self.storage_plain_http_hosts.split(",") if h.strip()]
            if netloc not in listed:
                self.storage_plain_http_hosts = ",".join([*listed, netloc])
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

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

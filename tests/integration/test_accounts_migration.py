"""`db init` brings an older schema's account tables to this version, and again is a no-op:
codes keyed per file (they were per login), no per-login lockout table."""

from __future__ import annotations

from psycopg.sql import SQL, Identifier

from tests.integration.migrations import init_twice, older_schema

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


# A code of that release, keyed by its login.
OLD_CODE = (
    "INSERT INTO {s}.account_codes (login, purpose, code_hash, email, language, expires_at,"
    " created_at) VALUES ('12345678', 'reset', 'h', 'e', 'en', now(), now())"
)


def test_db_init_migrates_the_account_tables_and_can_run_again(database_url: str) -> None:
    with older_schema(database_url, OLD_CODES, OLD_FAILURES, OLD_CODE) as schema:
        for conn in init_twice(database_url, schema):
            key = conn.execute(PRIMARY_KEY, (f"{schema}.account_codes",)).fetchall()
            assert [k for (k,) in key] == ["login", "purpose", "application_number"]
            kept = conn.execute(
                SQL("SELECT login, application_number FROM {}.account_codes").format(
                    Identifier(schema)
                )
            ).fetchall()
            assert kept == [("12345678", "")]
            gone = conn.execute("SELECT to_regclass(%s)", (f"{schema}.login_failures",))
            assert gone.fetchone() == (None,)

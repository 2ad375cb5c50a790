"""`db init` renames dead_letters.line_number (it holds Kafka offsets too) to position,
keeping every row and the key that deduplicates dead letters; again, it is a no-op."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from adapters.postgres.event_store import CaseStore
from adapters.postgres.schema import drop_schema, init_schema
from consumers.ports import DeadLetter

# The table as releases before the rename created it.
OLD_DEAD_LETTERS = (
    "CREATE TABLE {s}.dead_letters (id bigserial PRIMARY KEY, origin text NOT NULL,"
    " line_number bigint, raw bytea NOT NULL, raw_sha256 bytea NOT NULL,"
    " error_kind text NOT NULL, reason text NOT NULL, rule text, field text,"
    " application_number text, event_id uuid, topic text, partition integer, key bytea,"
    " published_at timestamptz, publish_error text, retried_at timestamptz,"
    " recorded_at timestamptz NOT NULL DEFAULT now(),"
    " UNIQUE NULLS NOT DISTINCT (origin, line_number, raw_sha256))"
)
COLUMNS = (
    "SELECT column_name FROM information_schema.columns"
    " WHERE table_schema = %s AND table_name = 'dead_letters'"
)
CONSTRAINTS = "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'"


@pytest.fixture
def old_schema(database_url: str) -> Iterator[str]:
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(name)))
        conn.execute(SQL(OLD_DEAD_LETTERS).format(s=Identifier(name)))  # type: ignore[arg-type]
        conn.execute(
            SQL(
                "INSERT INTO {}.dead_letters (origin, line_number, raw, raw_sha256, error_kind,"
                " reason) VALUES ('file:a.jsonl', 7, 'x', sha256('x'), 'invalid_json', 'r')"
            ).format(Identifier(name))
        )
    yield name
    drop_schema(database_url, name)


def test_db_init_renames_line_number_to_position_and_can_run_again(
    database_url: str, old_schema: str
) -> None:
    for _ in range(2):
        init_schema(database_url, old_schema)
        with psycopg.connect(database_url) as conn:
            columns = {c for (c,) in conn.execute(COLUMNS, (old_schema,))}
            assert "position" in columns and "line_number" not in columns
            unique = [c for (c,) in conn.execute(CONSTRAINTS, (f"{old_schema}.dead_letters",))]
            assert unique == ["dead_letters_origin_position_raw_sha256_key"]
    store = CaseStore(database_url, old_schema)
    try:
        assert store.dead_lettered("file:a.jsonl", [(7, b"x"), (8, b"x")]) == {7}
        # The kept key still deduplicates: the same dead letter again is not stored twice.
        again = DeadLetter("file:a.jsonl", 7, b"x", "invalid_json", "r")
        store.save([], dead_letters=[again, DeadLetter("kafka:t:0", 7, b"x", "invalid_json", "r")])
        rows = store.dead_letters.latest(10)
    finally:
        store.close()
    assert sorted((r["origin"], r["position"]) for r in rows) == [
        ("file:a.jsonl", 7),
        ("kafka:t:0", 7),
    ]

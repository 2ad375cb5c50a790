"""`db init` renames dead_letters.line_number (it holds Kafka offsets too) to position,
keeping every row and the key that deduplicates dead letters; again, it is a no-op."""

from __future__ import annotations

import pytest

from adapters.postgres.event_store import CaseStore, SchemaOutdated
from consumers.ports import DeadLetter
from tests.integration.migrations import init_twice, older_schema
from tests.vault import TEST_VAULT

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


OLD_DEAD_LETTER = (
    "INSERT INTO {s}.dead_letters (origin, line_number, raw, raw_sha256, error_kind, reason)"
    " VALUES ('file:a.jsonl', 7, 'x', sha256('x'), 'invalid_json', 'r')"
)


def test_db_init_renames_line_number_to_position_and_can_run_again(database_url: str) -> None:
    with older_schema(database_url, OLD_DEAD_LETTERS, OLD_DEAD_LETTER) as schema:
        for conn in init_twice(database_url, schema):
            columns = {c for (c,) in conn.execute(COLUMNS, (schema,))}
            assert "position" in columns and "line_number" not in columns
            unique = [c for (c,) in conn.execute(CONSTRAINTS, (f"{schema}.dead_letters",))]
            assert unique == ["dead_letters_origin_position_raw_sha256_key"]
        store = CaseStore(database_url, schema, TEST_VAULT)
        try:
            assert store.dead_lettered("file:a.jsonl", [(7, b"x"), (8, b"x")]) == {7}
            # The kept key still deduplicates: the same dead letter again is not stored twice.
            again = DeadLetter("file:a.jsonl", 7, b"x", "invalid_json", "r")
            other = DeadLetter("kafka:t:0", 7, b"x", "invalid_json", "r")
            store.save([], dead_letters=[again, other])
            rows = store.dead_letters.latest(10)
        finally:
            store.close()
    assert sorted((r["origin"], r["position"]) for r in rows) == [
        ("file:a.jsonl", 7),
        ("kafka:t:0", 7),
    ]


def test_an_older_schema_asks_for_db_init_instead_of_failing_on_a_missing_column(
    database_url: str,
) -> None:
    with older_schema(database_url, OLD_DEAD_LETTERS) as schema:
        store = CaseStore(database_url, schema, TEST_VAULT)
        try:
            with pytest.raises(SchemaOutdated, match="run `casetrack db init`"):
                store.check_schema()
        finally:
            store.close()

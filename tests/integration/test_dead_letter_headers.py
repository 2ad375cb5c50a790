"""A Kafka dead letter's headers in the dead_letters table: stored as they came, handed to
the outbox and to retries, dropped with the raw input by retention and by erasure (a
header's value naming an erased person is found too), added to an older table."""

from __future__ import annotations

from datetime import timedelta

from adapters.postgres.event_store import CaseStore
from adapters.postgres.schema import init_schema
from consumers.ports import DeadLetter
from tests.stores import count, rows

HEADERS = (("ce_id", b"gcms-1"), ("x-trace", b"\xff\x00binary"), ("x-note", b"uci 12345678"))


def letter(position: int, headers: tuple[tuple[str, bytes], ...] = HEADERS) -> DeadLetter:
    return DeadLetter(
        "kafka:t:0", position, b"{}", "invalid_field", "ce_time: field required",
        field="ce_time", topic="t", partition=0, key=b"F000123456", headers=headers,
    )  # fmt: skip


def test_headers_are_stored_and_handed_back_as_they_came(store: CaseStore) -> None:
    store.save([], dead_letters=[letter(1), letter(2, headers=())])
    first, second = (
        r["id"] for r in rows(store, "SELECT id FROM {schema}.dead_letters ORDER BY id")
    )
    source = store.dead_letters.retry_source(first)
    assert source is not None and source.headers == HEADERS
    assert store.dead_letters.retry_source(second).headers == ()  # type: ignore[union-attr]
    with store.dead_letters.claim_unpublished("t", 10, 5000) as claim:
        assert [r.headers for r in claim.rows] == [HEADERS, ()]
        claim.mark_published([])


def test_erasure_drops_headers_that_name_the_person_and_retention_drops_the_rest(
    store: CaseStore,
) -> None:
    clean = (("ce_id", b"gcms-2"),)
    store.save([], dead_letters=[letter(1), letter(2, headers=clean)])
    with store.datastore.transaction(commit=True) as curs:
        assert store.dead_letters.drop_mentioning(curs, [], [b"12345678"]) == 1
    assert count(store, "dead_letters", "headers IS NULL AND raw = ''") == 1
    assert store.dead_letters.drop_older_than(timedelta(0)) == 1
    assert count(store, "dead_letters", "headers IS NULL AND raw = ''") == 2


def test_db_init_adds_headers_to_a_dead_letters_table_from_before(
    database_url: str, schema: str, store: CaseStore
) -> None:
    with store.datastore.transaction(commit=True) as curs:  # a schema from an older release
        curs.execute(f"ALTER TABLE {schema}.dead_letters DROP COLUMN headers")
    init_schema(database_url, schema)
    init_schema(database_url, schema)  # and again: idempotent
    store.save([], dead_letters=[letter(1)])
    assert count(store, "dead_letters", "headers IS NOT NULL") == 1

"""Every stored event gets its leaf, chain link and leaf index in its own transaction; an
older log is backfilled by `db init`, resumably; nothing is hashed past an unhashed event."""

from __future__ import annotations

import psycopg
import pytest

from adapters.postgres.event_hashes import EventHashes, LogNotChained
from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from adapters.postgres.schema import init_schema
from consumers.file_ingest import ingest_lines
from simulation import casegen
from tests.integration.hashes import assert_hashes_intact, stored_hashes
from tests.integration.test_ingest import _lines
from tests.stores import count, execute, rows
from tests.vault import TEST_VAULT


def test_events_written_in_batches_are_hashed_in_log_order(store: CaseStore) -> None:
    lines = _lines(casegen.generate(300, seed=3))
    ingest_lines(lines, "file:a", store, batch_size=17)

    assert count(store, "event_hashes") == count(store, EVENTS_TABLE) > 0
    assert_hashes_intact(store)


def test_db_init_backfills_an_older_log_and_resumes_an_interrupted_backfill(
    database_url: str, store: CaseStore
) -> None:
    ingest_lines(_lines(casegen.generate(200, seed=9)), "file:a", store, batch_size=50)
    complete = stored_hashes(store)
    for table in ("event_hashes", "event_hashes_backfill"):  # a log from before the tables
        execute(store, "DELETE FROM {schema}.{table}", table=table)

    with psycopg.connect(database_url, autocommit=True) as conn:
        hashed = EventHashes(store.schema, EVENTS_TABLE).backfill(conn, batch=40)
    assert hashed == len(complete)
    # An interrupted backfill leaves a committed prefix; the next `db init` goes on from it.
    execute(store, "DELETE FROM {schema}.event_hashes WHERE leaf_index >= 120")
    execute(store, "DELETE FROM {schema}.event_hashes_backfill")  # it did not finish
    init_schema(database_url, store.schema)

    assert_hashes_intact(store)
    # Leaves cover the stored columns, so the backfill recomputes exactly what was written.
    assert stored_hashes(store) == complete


def test_nothing_is_written_after_an_event_that_has_no_hashes(store: CaseStore) -> None:
    lines = _lines(casegen.generate(60, seed=11))
    ingest_lines(lines[:30], "file:a", store)
    events_before = count(store, EVENTS_TABLE)
    last = rows(store, "SELECT max(notification_id) AS n FROM {schema}.{events}")[0]["n"]
    execute(store, "DELETE FROM {schema}.event_hashes WHERE notification_id = %s", (last,))

    with pytest.raises(LogNotChained, match=f"notification id {last} has no hashes"):
        ingest_lines(lines[30:], "file:a", store)
    assert count(store, EVENTS_TABLE) == events_before


def test_a_case_whose_previous_event_lost_its_hashes_is_named(
    database_url: str, store: CaseStore
) -> None:
    lines = _lines(casegen.generate(40, seed=12))
    ingest_lines(lines[:200], "file:a", store)
    version = rows(
        store, "SELECT case_id, max(case_version) AS v FROM {schema}.event_hashes"
        " GROUP BY case_id ORDER BY 2 DESC LIMIT 1",
    )[0]  # fmt: skip
    execute(
        store, "DELETE FROM {schema}.event_hashes WHERE case_id = %s AND case_version = %s",
        (version["case_id"], version["v"]),
    )  # fmt: skip
    restarted = CaseStore(database_url, store.schema, TEST_VAULT)  # remembers no link of its own
    try:
        with pytest.raises(LogNotChained, match=f"case {version['case_id']} version"):
            ingest_lines(lines[200:], "file:a", restarted)
    finally:
        restarted.close()


def test_once_hashed_the_log_never_hashes_an_event_casetrack_did_not_write(
    database_url: str, store: CaseStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row INSERTed with SQL after the backfill finished stops the writers, and `db init`
    does not launder it into the log by hashing it."""
    ingest_lines(_lines(casegen.generate(20, seed=13)), "file:a", store)
    execute(
        store,
        "INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state)"
        " SELECT gen_random_uuid(), 1, topic, state FROM {schema}.{events} LIMIT 1",
    )
    forged = rows(store, "SELECT max(notification_id) AS n FROM {schema}.{events}")[0]["n"]

    init_schema(database_url, store.schema)
    assert rows(store, "SELECT count(*) AS n FROM {schema}.event_hashes WHERE notification_id"
                " = %s", (forged,))[0]["n"] == 0  # fmt: skip
    assert "casetrack did not write them" in capsys.readouterr().err
    with pytest.raises(LogNotChained, match="audit verify"):
        ingest_lines(_lines(casegen.generate(5, seed=14)), "file:b", store)

"""An event_id names one event of one case, across writers and across schema versions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from uuid import UUID

from psycopg.sql import SQL, Identifier

from adapters.postgres.event_store import CaseStore
from adapters.postgres.schema import init_schema
from consumers.batch import BatchWriter, Message
from consumers.file_ingest import ingest_lines, parse_line
from domain.application_number import case_id
from domain.commands import Outcome
from simulation import casegen
from tests.property.strategies import dead_letter_rows
from tests.vault import TEST_VAULT


def _received_lines(cases: int, seed: int) -> list[dict[str, object]]:
    return [
        event
        for event in map(json.loads, casegen.generate(cases, seed=seed))
        if event["type"] == "application.received"
    ]


def _message(event: dict[str, object], line: int) -> Message:
    raw = json.dumps(event).encode()
    return Message("test", line, raw, parse_line(raw))


def test_reuse_of_an_event_id_from_before_the_table_existed_is_rejected(
    database_url: str, schema: str, store: CaseStore
) -> None:
    first, second = _received_lines(2, seed=21)
    ingest_lines([json.dumps(first).encode()], "before.jsonl", store)
    with store.datastore.transaction(commit=True) as curs:  # a schema from an older release
        curs.execute(SQL("DROP TABLE {}.event_ids").format(Identifier(schema)))
    init_schema(database_url, schema)  # creates the table and fills it from the log

    reused = {**second, "event_id": first["event_id"]}
    summary = ingest_lines([json.dumps(reused).encode()], "after.jsonl", store)

    assert summary.as_dict() == {"accepted": 0, "duplicates": 0, "rejected": 1}
    (letter,) = dead_letter_rows(store, "after.jsonl")
    assert (letter["error_kind"], letter["rule"]) == ("rule_violation", "event_id_reused")
    assert store.load([case_id(str(second["application_number"]))]) == {}


class _Interleaved(CaseStore):
    """A store whose first ownership read is followed, before its save, by another
    writer's batch: the race a primary key must settle."""

    def __init__(self, url: str, schema: str, meanwhile: list[Message]) -> None:
        super().__init__(url, schema, TEST_VAULT)
        self.meanwhile = meanwhile

    def event_id_owners(self, event_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        owners = super().event_id_owners(event_ids)
        if self.meanwhile:
            other = CaseStore(self.url, self.schema, TEST_VAULT)
            try:
                assert BatchWriter(other).write(self.meanwhile) == [Outcome.ACCEPTED]
            finally:
                other.close()
            self.meanwhile = []
        return owners


def test_two_writers_racing_with_one_event_id_store_it_once(
    database_url: str, schema: str, store: CaseStore
) -> None:
    first, second = _received_lines(2, seed=22)
    reused = {**second, "event_id": first["event_id"]}
    racing = _Interleaved(database_url, schema, meanwhile=[_message(reused, 1)])
    try:
        (outcome,) = BatchWriter(racing).write([_message(first, 1)])
    finally:
        racing.close()

    assert outcome is Outcome.REJECTED  # its save hit the key, the replay saw the owner
    event_id = UUID(str(first["event_id"]))
    assert store.event_id_owners([event_id]) == {
        event_id: case_id(str(second["application_number"]))
    }
    assert store.load([case_id(str(first["application_number"]))]) == {}
    (letter,) = dead_letter_rows(store)
    assert letter["rule"] == "event_id_reused"


def test_a_redelivery_with_other_content_is_dead_lettered_and_the_original_kept(
    store: CaseStore,
) -> None:
    """Judged against the stored event, decoded: a fresh writer holds no cached case."""
    events = [json.loads(line) for line in casegen.generate(1, seed=31)]
    lines = [json.dumps(e).encode() for e in events]
    ingest_lines(lines, "first", store)
    number = str(events[0]["application_number"])
    stored = store.stored_events(case_id(number))
    received = events[0]
    occurred_at = datetime.fromisoformat(str(received["occurred_at"]))
    same_instant = occurred_at.astimezone(timezone(timedelta(hours=5))).isoformat()
    assert same_instant != received["occurred_at"]
    redeliveries = [
        {**received, "occurred_at": same_instant},  # the same event in another form
        {**received, "payload": {**received["payload"], "category": "dependent_child"}},
        {**received, "type": "application.withdrawn", "payload": {}},
        {**events[-1], "source": "another-system"},
    ]

    outcomes = [
        BatchWriter(store).write([_message(event, line)])[0]
        for line, event in enumerate(redeliveries, start=1)
    ]

    assert outcomes == [Outcome.DUPLICATE, Outcome.REJECTED, Outcome.REJECTED, Outcome.REJECTED]
    assert [e.event_id for e in store.stored_events(case_id(number))] == [
        e.event_id for e in stored
    ]
    letters = dead_letter_rows(store)
    assert [letter["rule"] for letter in letters] == ["conflicting_redelivery"] * 3
    assert [letter["event_id"] for letter in letters] == [
        UUID(str(e["event_id"])) for e in redeliveries[1:]
    ]


def test_the_event_id_backfill_of_an_older_schema_passes_over_a_corrupt_row(
    database_url: str, schema: str, store: CaseStore
) -> None:
    """`casetrack db init` on a log from before the event_ids table, holding one row that
    does not decode: the migration completes (a corrupt row cannot stop it for ever, nor
    put its bytes in an error) and every readable event's id is registered."""
    from tests.integration.stored_events import store_undecodable

    first, second = _received_lines(2, seed=23)
    ingest_lines([json.dumps(first).encode()], "before.jsonl", store)
    store_undecodable(store, "F000000002")
    with store.datastore.transaction(commit=True) as curs:  # a schema from an older release
        curs.execute(SQL("DROP TABLE {}.event_ids").format(Identifier(schema)))

    init_schema(database_url, schema)

    reused = {**second, "event_id": first["event_id"]}
    summary = ingest_lines([json.dumps(reused).encode()], "after.jsonl", store)
    assert summary.as_dict() == {"accepted": 0, "duplicates": 0, "rejected": 1}
    (letter,) = dead_letter_rows(store, "after.jsonl")
    assert letter["rule"] == "event_id_reused"

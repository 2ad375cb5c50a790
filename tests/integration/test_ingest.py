"""File ingestion against real PostgreSQL: outcomes, dead letters, idempotence, batching."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from consumers.file_ingest import MAX_LINE_BYTES, ingest_lines
from domain.application_number import case_id
from projections import case_status
from projections.case_status_table import CaseStatusProjection, read
from projections.projector import Projector
from simulation import casegen
from tests.stores import count, rows


def _lines(text_lines: list[str]) -> list[bytes]:
    return [(line + "\n").encode() for line in text_lines]


def _event(type_: str, number: str, payload: dict[str, object], event_id: str | None = None) -> str:
    return json.dumps(
        {
            "event_id": event_id or str(uuid.uuid4()),
            "schema_version": 1,
            "type": type_,
            "application_number": number,
            "occurred_at": "2024-03-01T09:30:00-05:00",
            "source": "gcms",
            "payload": payload,
        }
    )


PERSON = {
    "uci": "12345678",
    "given_name": "Ana",
    "family_name": "Lopez",
    "date_of_birth": "1990-04-02",
    "email": "ana@example.org",
}
RECEIVED = {
    "category": "spouse",
    "received_on": "2024-02-01",
    "principal_applicant": PERSON,
    "sponsor": {**PERSON, "uci": "87654321"},
    "preferred_language": "en",
}


def test_each_line_is_accepted_duplicate_or_rejected(store: CaseStore) -> None:
    same_id = str(uuid.uuid4())
    lines = [
        _event("application.received", "F000000001", RECEIVED),
        _event(
            "application.acknowledged", "F000000001", {"acknowledged_on": "2024-03-01"}, same_id
        ),
        _event(
            "application.acknowledged", "F000000001", {"acknowledged_on": "2024-03-01"}, same_id
        ),
        "{not json",
        "",
        _event("medical.passed", "F000000001", {}),
        _event("eligibility.started", "F000000002", {}),
    ]
    summary = ingest_lines(_lines(lines), "test", store)
    assert summary.as_dict() == {"accepted": 2, "duplicates": 1, "rejected": 3}
    assert count(store, EVENTS_TABLE) == 2

    dead = rows(
        store,
        "SELECT position, raw, error_kind, rule, reason FROM {schema}.dead_letters"
        " ORDER BY position",
    )
    assert [(d["position"], d["error_kind"], d["rule"]) for d in dead] == [
        (4, "invalid_json", None),
        (6, "rule_violation", "activity_not_requested"),
        (7, "rule_violation", "case_not_received"),
    ]
    assert bytes(dead[0]["raw"]) == b"{not json"
    assert "must be requested first" in dead[1]["reason"]


def test_reingesting_a_file_adds_nothing(store: CaseStore) -> None:
    lines = _lines(casegen.generate(60, seed=3, duplicate_share=0.05, invalid_share=0.02))
    first = ingest_lines(lines, "file:a", store, batch_size=37)
    events, dead = count(store, EVENTS_TABLE), count(store, "dead_letters")
    again = ingest_lines(lines, "file:a", store, batch_size=500)
    assert again.accepted == 0
    assert again.duplicates == first.accepted + first.duplicates
    assert again.rejected == first.rejected
    assert (count(store, EVENTS_TABLE), count(store, "dead_letters")) == (events, dead)
    assert first.accepted == events


def test_appends_are_batched_into_few_transactions(store: CaseStore) -> None:
    lines = _lines(casegen.generate(200, seed=5))
    ingest_lines(lines, "file:b", store, batch_size=500)
    # Every row keeps the id of the transaction that inserted it.
    [row] = rows(store, "SELECT count(DISTINCT xmin::text) AS n FROM {schema}.{events}")
    assert int(row["n"]) <= -(-len(lines) // 500)


def test_oversized_and_blank_lines(store: CaseStore) -> None:
    huge = b'{"x": "' + b"a" * (MAX_LINE_BYTES + 1) + b'"}\n'
    summary = ingest_lines([b"\n", b"   \n", huge], "file:c", store)
    assert summary.as_dict() == {"accepted": 0, "duplicates": 0, "rejected": 1}


def test_status_view_follows_the_log(store: CaseStore) -> None:
    lines = _lines(casegen.generate(40, seed=11))
    ingest_lines(lines, "file:d", store)
    Projector(store, CaseStatusProjection(), page_size=97).catch_up()
    numbers = {json.loads(line)["application_number"] for line in lines}
    with store.datastore.transaction(commit=False) as curs:
        for number in numbers:
            expected = case_status.fold(store.stored_events(case_id(number)))
            assert read(curs, store.schema, number) == expected


def test_sample_file_ingests(store: CaseStore) -> None:
    sample = Path(__file__).resolve().parents[2] / "samples" / "events.jsonl"
    with sample.open("rb") as f:
        summary = ingest_lines(f, "sample", store)
    assert summary.accepted > 100
    assert summary.duplicates > 0 and summary.rejected > 0


def test_a_case_whose_stored_events_do_not_decode_dead_letters_its_messages_and_the_rest_go_on(
    store: CaseStore,
) -> None:
    """A corrupt stored row is a data error of one case: its new messages wait in the
    dead-letter table (raw, for a retry after the repair); every other case goes on."""
    from tests.integration.stored_events import store_undecodable
    from tests.property.strategies import dead_letter_rows

    events = [json.loads(line) for line in casegen.generate(3, seed=41)]
    corrupt = str(events[0]["application_number"])
    store_undecodable(store, corrupt)
    lines = [(json.dumps(e) + "\n").encode() for e in events]

    summary = ingest_lines(lines, "after-corruption", store, batch_size=5)

    theirs = [e for e in events if e["application_number"] == corrupt]
    assert summary.as_dict() == {
        "accepted": len(events) - len(theirs),
        "duplicates": 0,
        "rejected": len(theirs),
    }
    letters = dead_letter_rows(store, "after-corruption")
    assert {row["error_kind"] for row in letters} == {"case_unreadable"}
    assert [row["event_id"] for row in letters] == [uuid.UUID(e["event_id"]) for e in theirs]
    assert all(corrupt not in row["reason"] for row in letters)
    others = {str(e["application_number"]) for e in events} - {corrupt}
    assert all(store.stored_events(case_id(n)) for n in others)

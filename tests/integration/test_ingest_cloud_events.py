"""`casetrack ingest` of a file mixing v1 envelopes and CloudEvents in structured mode:
the same events, ids and views as the v1 file; a second run adds nothing; a malformed
CloudEvent line is a dead letter naming its attribute."""

from __future__ import annotations

import json

from adapters.postgres.event_store import CaseStore
from consumers.file_ingest import ingest_lines
from simulation import casegen
from tests.cloud_event_producer import cloud_event, structured
from tests.integration.snapshots import file_reference, project, snapshot
from tests.stores import rows


def mixed(lines: list[str]) -> list[bytes]:
    """Every other line as a structured CloudEvent (every fourth with a plain type)."""
    out = []
    for n, line in enumerate(lines):
        if n % 2:
            event = cloud_event(json.loads(line), plain_type=n % 4 == 1)
            out.append(structured(event).value + b"\n")
        else:
            out.append(line.encode() + b"\n")
    return out


def test_a_file_of_structured_cloud_events_ingests_as_its_v1_lines(
    database_url: str, store: CaseStore
) -> None:
    lines = casegen.generate(6, seed=41)
    first = ingest_lines(mixed(lines), "file:mixed.jsonl", store)
    assert first.as_dict() == {"accepted": len(lines), "duplicates": 0, "rejected": 0}
    again = ingest_lines(mixed(lines), "file:mixed.jsonl", store)
    assert again.as_dict() == {"accepted": 0, "duplicates": len(lines), "rejected": 0}
    project(store)
    assert snapshot(store, origins=False) == file_reference(database_url, lines)


def test_a_malformed_cloud_event_line_is_a_dead_letter_naming_the_attribute(
    store: CaseStore,
) -> None:
    received = json.loads(casegen.generate(1, seed=42)[0])
    event = json.loads(structured(cloud_event(received)).value)
    del event["time"]
    line = json.dumps(event).encode()
    summary = ingest_lines([line + b"\n"], "file:bad.jsonl", store)
    assert summary.rejected == 1
    (letter,) = rows(store, "SELECT raw, error_kind, field, reason FROM {schema}.dead_letters")
    assert bytes(letter["raw"]) == line
    assert (letter["error_kind"], letter["field"]) == ("invalid_field", "time")
    assert letter["reason"] == "time: field required (when it happened)"

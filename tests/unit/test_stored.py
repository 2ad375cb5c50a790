"""domain.integrity.stored: payloads nested too deeply give the same leaf whichever parser
reads them (orjson where installed, the standard library on an auditor's machine)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from domain.integrity import stored
from domain.integrity.stored import StoredRow, column_leaf, hash_events, leaf_record

CASE = UUID("0b7c6c7e-4a51-4a8e-9a0c-2f1d8f0b7c11")


def nested(levels: int) -> bytes:
    """A payload whose fields are readable but which holds `levels` levels of nesting in
    all (a bracket inside a string counts for nothing)."""
    inner = b'{"b": "[[{{", "c": ' * (levels - 2) + b"[]" + b"}" * (levels - 2)
    return b'{"source": "kafka:x", "a": ' + inner + b"}"


@pytest.mark.parametrize(
    ("levels", "readable"), [(990, True), (1000, True), (1024, True), (1025, False), (10**5, False)]
)
def test_nesting_deeper_than_1024_levels_is_unparsable_for_either_parser(
    monkeypatch: pytest.MonkeyPatch, levels: int, readable: bool
) -> None:
    """orjson reads up to 1024 levels and refuses more; the standard library's parser runs
    out of stack (RecursionError) somewhat below 1000, depending on the caller: it follows
    orjson's rule, so the leaves are the same on every machine."""
    row = StoredRow(1, CASE, 1, "domain.case:Case.Received", nested(levels))
    fast = hash_events([row], {}, 0)
    assert leaf_record(row).source == ("kafka:x" if readable else "")
    monkeypatch.setattr(stored, "_loads", json.loads)  # an auditor's machine without orjson
    assert hash_events([row], {}, 0) == fast
    assert leaf_record(row).source == ("kafka:x" if readable else "")
    assert column_leaf(CASE.bytes, 1, row.topic, row.state) == (fast[0].leaf, fast[0].fields)


class _Upcast:
    """An event of a class at version 3, as the writer hands it over (its own envelope)."""

    class_version = 3
    event_id = UUID("5f0c1c3e-0d6b-4d1e-8f4a-0e9b1f2a3c4d")
    source = "gcms"
    occurred_at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5)))
    timestamp = datetime(2026, 1, 2, 8, 4, 6, 7, tzinfo=UTC)


class _Unversioned(_Upcast):
    """A class without its own class version: eventsourcing stores none, and reads 1."""

    class_version = 1


def _payload(event: _Upcast) -> bytes:
    state: dict[str, object] = {
        "event_id": {"_type_": "uuid_hex", "_data_": event.event_id.hex},
        "source": event.source,
        "occurred_at": {"_type_": "datetime_iso", "_data_": event.occurred_at.isoformat()},
        "timestamp": {"_type_": "datetime_iso", "_data_": event.timestamp.isoformat()},
    }
    if event.class_version > 1:
        state["class_version"] = event.class_version
    return json.dumps(state).encode()


@pytest.mark.parametrize("event", [_Upcast(), _Unversioned()])
def test_the_writers_class_version_is_the_event_classs_as_its_payload_holds_it(
    event: _Upcast,
) -> None:
    """The writer takes the class version from the event's class (cached per class within a
    batch); the verifier reads it from the payload: the leaves agree for 1 and above."""
    rows = [
        StoredRow(1, CASE, 1, "domain.case:Case.Received", _payload(event)),
        StoredRow(2, CASE, 2, "domain.case:Case.Received", _payload(event)),
    ]
    assert hash_events(rows, {}, 0, [event, event]) == hash_events(rows, {}, 0)

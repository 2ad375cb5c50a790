"""The writer hashes an event from the domain event's envelope (it does not parse back the
payload it just wrote); everyone else hashes the stored columns. The two must give the same
leaf and field checksums for every event, or a genuine event would fail verification."""

from __future__ import annotations

import json
import os
from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.persistence import JSONTranscoder
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.postgres.event_codec import CaseEventMapper
from adapters.privacy.personal_codec import PersonalDataCodec
from consumers.contract import parse_event
from domain.case import Case, handle
from domain.integrity.stored import StoredRow, hash_events
from simulation import casegen
from tests.property.strategies import aware_datetimes, examples


class _FreshKeys(dict[tuple[UUID, str], tuple[UUID, bytes]]):
    """A key for every subject asked for: the leaves cover the sealed payload as stored."""

    def __missing__(self, subject: tuple[UUID, str]) -> tuple[UUID, bytes]:
        self[subject] = (uuid4(), os.urandom(32))
        return self[subject]


_MAPPER = CaseEventMapper(transcoder=JSONTranscoder())
_MAPPER.personal = PersonalDataCodec(lambda subjects: {})
_MAPPER.sealing = _FreshKeys()
_LINES = casegen.generate(40, seed=3)


@settings(max_examples=examples(100), deadline=None)
@given(
    first=st.integers(0, len(_LINES) - 1),
    source=st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True),  # the contract's sources
    occurred_at=aware_datetimes,
)
def test_the_writers_leaves_equal_the_stored_columns_leaves(
    first: int, source: str, occurred_at: datetime
) -> None:
    cases: dict[str, Case] = {}
    events: list[Case.Event] = []
    for line in _LINES[first:] + _LINES[:first]:
        message = json.loads(line)
        message["source"], message["occurred_at"] = source, occurred_at.isoformat()
        try:
            command = parse_event(json.dumps(message))
            case, _ = handle(cases.get(command.application_number), command)
        except Exception:  # a message out of order for its case, or a value refused
            continue
        cases[command.application_number] = case
        events += case.collect_events()
    stored = [_MAPPER.to_stored_event(e) for e in events]
    rows = [
        StoredRow(i, s.originator_id, s.originator_version, s.topic, s.state)  # type: ignore[arg-type]
        for i, s in enumerate(stored)
    ]
    assert events
    assert hash_events(rows, {}, 0, events) == hash_events(rows, {}, 0)

"""Retrying a dead letter against a fake store: what a retry appends, and what it reports."""

from __future__ import annotations

import pytest

from consumers.batch import BatchWriter, Message
from consumers.dead_letter_retry import retry_dead_letter
from consumers.file_ingest import parse_line
from consumers.ports import DeadLetter
from domain import catalogue as t
from domain.application_number import case_id
from domain.commands import Outcome, RecordCaseEvent
from tests.unit.builders import APPLICATION_NUMBER, envelope, raw
from tests.unit.fakes import FakeStore

CASE = case_id(APPLICATION_NUMBER)
ORIGIN = "kafka:events:3"


def _receive(store: FakeStore, line: bytes, position: int) -> Outcome:
    """``line`` as the consumer first wrote it: offset ``position`` of partition 3."""
    message = Message(
        ORIGIN, position, line, parse_line(line), topic="events", partition=3, key=b"key"
    )
    (outcome,) = BatchWriter(store).write([message])
    return outcome


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def test_an_event_that_overtook_its_case_is_accepted_once_the_case_is_there(
    store: FakeStore,
) -> None:
    received = raw(envelope(t.RECEIVED)).encode()
    acknowledged = raw(envelope(t.ACKNOWLEDGED)).encode()
    assert _receive(store, acknowledged, 1) is Outcome.REJECTED  # an unknown case
    assert _receive(store, received, 2) is Outcome.ACCEPTED

    retried = retry_dead_letter(store, store, 1)

    assert retried is not None
    assert retried.outcome is Outcome.ACCEPTED
    assert isinstance(retried.parsed, RecordCaseEvent)
    assert retried.parsed.type == t.ACKNOWLEDGED
    assert retried.rejection is None
    assert store.event_types(CASE) == [t.RECEIVED, t.ACKNOWLEDGED]
    assert store.retried == {1}


def test_a_second_retry_is_a_duplicate_and_appends_nothing(store: FakeStore) -> None:
    _receive(store, raw(envelope(t.ACKNOWLEDGED)).encode(), 1)
    _receive(store, raw(envelope(t.RECEIVED)).encode(), 2)
    retry_dead_letter(store, store, 1)

    again = retry_dead_letter(store, store, 1)

    assert again is not None
    assert again.outcome is Outcome.DUPLICATE
    assert store.event_types(CASE) == [t.RECEIVED, t.ACKNOWLEDGED]


def test_a_message_rejected_again_is_dead_lettered_as_the_retry_s_own(store: FakeStore) -> None:
    _receive(store, b"not json at all", 7)

    retried = retry_dead_letter(store, store, 1)

    assert retried is not None
    assert retried.outcome is Outcome.REJECTED
    assert retried.rejection is not None
    assert retried.rejection[0] == "invalid_json"
    first, own = store.dead_letters
    assert own == DeadLetter(
        "retry:1",
        7,
        b"not json at all",
        "invalid_json",
        retried.rejection[1],
        field=first.field,
        topic="events",
        partition=3,
        key=b"key",
    )
    assert store.retried == {1}


def test_an_unknown_dead_letter_is_none_and_writes_nothing(store: FakeStore) -> None:
    assert retry_dead_letter(store, store, 1) is None
    assert store.save_attempts == 0
    assert store.retried == set()

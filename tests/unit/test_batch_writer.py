"""The batch writer against a fake store: what it accepts, rejects and replays."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from consumers.batch import BatchWriter, Message
from consumers.file_ingest import parse_line
from consumers.ports import ConcurrencyConflict, ConsumerOffset, DeadLetter, StoreUnavailable
from domain import catalogue as t
from domain.application_number import case_id
from domain.commands import Outcome, RecordCaseEvent
from tests.unit.builders import APPLICATION_NUMBER, cmd
from tests.unit.fakes import FakeStore

CASE = case_id(APPLICATION_NUMBER)
ORIGIN = "kafka:events:3"


def _message(
    parsed: RecordCaseEvent, position: int = 1, *, already_dead_lettered: bool = False
) -> Message:
    return Message(
        ORIGIN,
        position,
        b"raw %d" % position,
        parsed,
        already_dead_lettered=already_dead_lettered,
        topic="events",
        partition=3,
        key=b"key",
    )


def _letter(message: Message, error_kind: str, reason: str, **why: Any) -> DeadLetter:
    """The dead letter ``message`` must become: where it came from and its bytes, as they
    came, and why it was rejected."""
    where = {"topic": message.topic, "partition": message.partition, "key": message.key}
    return DeadLetter(
        message.origin, message.position, message.raw, error_kind, reason, **where, **why
    )


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def writer(store: FakeStore) -> BatchWriter:
    return BatchWriter(store)


def test_accepts_a_new_case_and_saves_its_events_with_the_offsets(
    store: FakeStore, writer: BatchWriter
) -> None:
    received, acknowledged = cmd(t.RECEIVED), cmd(t.ACKNOWLEDGED)
    offset = ConsumerOffset("group", "events", 3, 3)
    outcomes = writer.write([_message(received, 1), _message(acknowledged, 2)], [offset])
    assert outcomes == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert store.event_types(CASE) == [t.RECEIVED, t.ACKNOWLEDGED]
    assert store.offsets == {("group", "events", 3): offset}
    assert store.dead_letters == []


def test_a_redelivered_event_is_a_duplicate_and_is_stored_once(
    store: FakeStore, writer: BatchWriter
) -> None:
    received, acknowledged = cmd(t.RECEIVED), cmd(t.ACKNOWLEDGED)
    assert writer.write([_message(received, 1), _message(received, 2)]) == [
        Outcome.ACCEPTED,
        Outcome.DUPLICATE,
    ]
    assert writer.write([_message(acknowledged, 3), _message(received, 4)]) == [
        Outcome.ACCEPTED,
        Outcome.DUPLICATE,
    ]
    assert BatchWriter(store).write([_message(acknowledged, 5)]) == [Outcome.DUPLICATE]
    assert store.event_types(CASE) == [t.RECEIVED, t.ACKNOWLEDGED]


def test_a_message_that_breaks_the_contract_becomes_its_dead_letter(
    store: FakeStore, writer: BatchWriter
) -> None:
    error = parse_line(b"not json")
    message = Message(ORIGIN, 7, b"not json", error, topic="events", partition=3, key=b"k")
    assert writer.write([message]) == [Outcome.REJECTED]
    assert store.dead_letters == [_letter(message, "invalid_json", str(error), field=None)]
    assert store.events == {}


def test_a_rule_violation_becomes_a_dead_letter_naming_the_rule_and_the_event(
    store: FakeStore, writer: BatchWriter
) -> None:
    orphan = cmd(t.ACKNOWLEDGED)  # no application.received for the case
    message = _message(orphan, 4)
    assert writer.write([message]) == [Outcome.REJECTED]
    (letter,) = store.dead_letters
    assert letter == _letter(
        message,
        "rule_violation",
        letter.reason,
        rule="case_not_received",
        application_number=APPLICATION_NUMBER,
        event_id=orphan.event_id,
    )
    assert store.events == {}


def test_an_event_id_held_by_another_case_is_rejected(
    store: FakeStore, writer: BatchWriter
) -> None:
    other = dataclasses.replace(cmd(t.RECEIVED), application_number="F000999999")
    writer.write([_message(other, 1)])
    reused = dataclasses.replace(cmd(t.RECEIVED), event_id=other.event_id)
    assert writer.write([_message(reused, 2)]) == [Outcome.REJECTED]
    assert [d.rule for d in store.dead_letters] == ["event_id_reused"]
    assert CASE not in store.events


def test_a_case_whose_stored_events_cannot_be_read_dead_letters_its_messages_only(
    store: FakeStore, writer: BatchWriter
) -> None:
    store.append(cmd(t.RECEIVED))
    store.unreadable[CASE] = ValueError("corrupt row")
    other = dataclasses.replace(cmd(t.RECEIVED), application_number="F000999999")
    outcomes = writer.write([_message(cmd(t.ACKNOWLEDGED), 1), _message(other, 2)])
    assert outcomes == [Outcome.REJECTED, Outcome.ACCEPTED]
    (letter,) = store.dead_letters
    assert (letter.error_kind, letter.position) == ("case_unreadable", 1)
    assert "ValueError" in letter.reason and "corrupt row" not in letter.reason


def test_a_message_already_dead_lettered_is_rejected_without_a_second_letter(
    store: FakeStore, writer: BatchWriter
) -> None:
    orphan = _message(cmd(t.ACKNOWLEDGED), 4, already_dead_lettered=True)
    assert writer.write([orphan]) == [Outcome.REJECTED]
    assert store.dead_letters == []


def test_a_concurrency_conflict_replays_the_batch_on_fresh_state_losing_and_doubling_nothing(
    store: FakeStore, writer: BatchWriter
) -> None:
    writer.write([_message(cmd(t.RECEIVED), 1)])  # the case is cached now
    # Another writer appends to the case between our read (the cache) and our save.
    store.before_save = lambda: store.append(cmd("medical.requested"))
    offset = ConsumerOffset("group", "events", 3, 4)
    outcomes = writer.write(
        [_message(cmd(t.ACKNOWLEDGED), 2), Message(ORIGIN, 3, b"{", parse_line(b"{"))],
        [offset],
    )
    assert outcomes == [Outcome.ACCEPTED, Outcome.REJECTED]
    assert store.save_attempts == 3  # the first batch, the conflicting save, the replay
    assert store.event_types(CASE) == [t.RECEIVED, "medical.requested", t.ACKNOWLEDGED]
    assert [d.position for d in store.dead_letters] == [3]
    assert store.offsets[("group", "events", 3)] == offset


def test_a_batch_still_conflicting_after_every_attempt_raises(
    store: FakeStore, writer: BatchWriter
) -> None:
    store.failures = [ConcurrencyConflict("again")] * BatchWriter.MAX_ATTEMPTS
    with pytest.raises(ConcurrencyConflict):
        writer.write([_message(cmd(t.RECEIVED), 1)])
    assert store.save_attempts == BatchWriter.MAX_ATTEMPTS
    assert store.events == {}


def test_a_case_whose_save_failed_is_read_again_not_taken_from_the_cache(
    store: FakeStore, writer: BatchWriter
) -> None:
    writer.write([_message(cmd(t.RECEIVED), 1)])
    acknowledged = cmd(t.ACKNOWLEDGED)
    store.failures = [StoreUnavailable("database gone")]
    with pytest.raises(StoreUnavailable):
        writer.write([_message(acknowledged, 2)])
    store.loads.clear()
    # Redelivered after the outage: the cached case held it unsaved, the store does not.
    assert writer.write([_message(acknowledged, 2)]) == [Outcome.ACCEPTED]
    assert store.loads == [[CASE]]
    assert store.event_types(CASE) == [t.RECEIVED, t.ACKNOWLEDGED]


def test_cases_saved_are_served_from_the_cache(store: FakeStore, writer: BatchWriter) -> None:
    writer.write([_message(cmd(t.RECEIVED), 1)])
    store.loads.clear()
    assert writer.write([_message(cmd(t.ACKNOWLEDGED), 2)]) == [Outcome.ACCEPTED]
    assert store.loads == [[]]


def test_a_rule_violation_on_a_cached_case_is_judged_again_on_fresh_state(
    store: FakeStore, writer: BatchWriter
) -> None:
    writer.write([_message(cmd(t.RECEIVED), 1)])  # cached: medical not requested
    store.append(cmd("medical.requested"))  # another writer moved the case on
    store.loads.clear()
    assert writer.write([_message(cmd("medical.passed"), 2)]) == [Outcome.ACCEPTED]
    assert store.loads == [[], [CASE]]  # the cache first, then the store
    assert store.dead_letters == []
    assert store.event_types(CASE) == [t.RECEIVED, "medical.requested", "medical.passed"]


def test_a_rule_violation_on_a_case_just_read_is_final(
    store: FakeStore, writer: BatchWriter
) -> None:
    store.append(cmd(t.RECEIVED))
    assert writer.write([_message(cmd("medical.passed"), 1)]) == [Outcome.REJECTED]
    assert len(store.loads) == 1
    assert [d.rule for d in store.dead_letters] == ["activity_not_requested"]

"""In-memory stand-ins for the write side's ports (consumers/ports.py) and the Kafka client.

Fakes for unit tests only: integration tests run on PostgreSQL and a real broker.
``FakeStore`` keeps each case as the list of its stored events and enforces what
the database's keys enforce (one event per case version, one case per event_id),
raising ConcurrencyConflict as CaseStore does; ``FakeClient`` records where the
positions put each partition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate
from kafka import TopicPartition

from consumers.ports import ConcurrencyConflict, ConsumerOffset, DeadLetter, RetrySource
from domain.application_number import case_id
from domain.case import Case, handle
from domain.commands import RecordCaseEvent


class FakeStore:
    """Implements CaseRepository, DeadLetterLookup, DeadLetterRetries and OffsetStore in
    memory; a dead letter's id is its place in ``dead_letters``, from 1."""

    def __init__(self) -> None:
        self.events: dict[UUID, list[CanMutateAggregate[UUID]]] = {}
        self.event_ids: dict[UUID, UUID] = {}
        self.dead_letters: list[DeadLetter] = []
        self.retried: set[int] = set()  # ids of the dead letters marked retried
        self.offsets: dict[tuple[str, str, int], ConsumerOffset] = {}
        self.unreadable: dict[UUID, Exception] = {}  # cases whose stored events do not decode
        self.loads: list[list[UUID]] = []  # the ids each load_readable asked for
        self.save_attempts = 0
        self.failures: list[Exception] = []  # raised by the next saves, one each
        self.before_save: Callable[[], None] | None = None  # another writer, once
        self.rewinds: list[tuple[ConsumerOffset, int]] = []
        self.tombstones: set[str] = set()  # UCIs of erased people
        self.before_rewind: Callable[[], None] | None = None  # another member, once

    # ------------------------------------------------------------ CaseRepository

    def load_readable(self, ids: Iterable[UUID]) -> tuple[dict[UUID, Case], dict[UUID, Exception]]:
        wanted = list(ids)
        self.loads.append(wanted)
        cases: dict[UUID, Case] = {}
        unreadable: dict[UUID, Exception] = {}
        for cid in wanted:
            if cid in self.unreadable:
                unreadable[cid] = self.unreadable[cid]
            elif cid in self.events:
                cases[cid] = _replay(self.events[cid])
        return cases, unreadable

    def event_id_owners(self, event_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        return {e: self.event_ids[e] for e in event_ids if e in self.event_ids}

    def erased_people(self, people: Sequence[str]) -> set[str]:
        return set(people) & self.tombstones

    def save(
        self,
        cases: Sequence[Case],
        dead_letters: Sequence[DeadLetter] = (),
        offsets: Sequence[ConsumerOffset] = (),
    ) -> None:
        self.save_attempts += 1
        if self.before_save is not None:
            meanwhile, self.before_save = self.before_save, None
            meanwhile()
        pending = [(case.id, case.collect_events()) for case in cases]
        if self.failures:
            raise self.failures.pop(0)
        for cid, events in pending:
            if events and events[0].originator_version != len(self.events.get(cid, [])) + 1:
                raise ConcurrencyConflict(f"case {cid} has moved on")
            if any(e.event_id in self.event_ids for e in events):  # type: ignore[attr-defined]
                raise ConcurrencyConflict("event_id already stored")
        for cid, events in pending:
            self.events.setdefault(cid, []).extend(events)
            for e in events:
                self.event_ids[e.event_id] = cid  # type: ignore[attr-defined]
        for letter in dead_letters:
            if not any(_same_letter(letter, d) for d in self.dead_letters):
                self.dead_letters.append(letter)
        for o in offsets:
            key = (o.group, o.topic, o.partition)
            if key not in self.offsets or self.offsets[key].next_offset < o.next_offset:
                self.offsets[key] = o

    def append(self, command: RecordCaseEvent) -> None:
        """Another writer stores ``command`` (as a process of its own would)."""
        cid = case_id(command.application_number)
        case, _ = handle(_replay(self.events[cid]) if cid in self.events else None, command)
        self.events.setdefault(cid, []).extend(events := case.collect_events())
        for e in events:
            self.event_ids[e.event_id] = cid  # type: ignore[attr-defined]

    def event_types(self, cid: UUID) -> list[str]:
        return [e.event_type for e in self.events.get(cid, [])]  # type: ignore[attr-defined]

    # ------------------------------------------------------------ DeadLetterLookup

    def dead_lettered(self, origin: str, positions: Sequence[tuple[int, bytes]]) -> set[int]:
        return {
            n
            for n, raw in positions
            if any(
                d.origin == origin and d.position == n and d.raw == raw for d in self.dead_letters
            )
        }

    # ------------------------------------------------------------ DeadLetterRetries

    def retry_source(self, dead_letter_id: int) -> RetrySource | None:
        if not 0 < dead_letter_id <= len(self.dead_letters):
            return None
        d = self.dead_letters[dead_letter_id - 1]
        return RetrySource(d.position, d.raw, d.topic, d.partition, d.key, d.headers)

    def mark_retried(self, dead_letter_id: int, origin: str) -> tuple[str, str] | None:
        self.retried.add(dead_letter_id)
        newest = [d for d in self.dead_letters if d.origin == origin][-1:]
        return (newest[0].error_kind, newest[0].reason) if newest else None

    # ------------------------------------------------------------ OffsetStore

    def stored_offsets(self, group: str, topic: str) -> dict[int, int]:
        return {
            p: o.next_offset for (g, t, p), o in self.offsets.items() if (g, t) == (group, topic)
        }

    def stored_topic_ids(self, group: str, topic: str) -> dict[int, UUID | None]:
        return {p: o.topic_id for (g, t, p), o in self.offsets.items() if (g, t) == (group, topic)}

    def store_offset(self, offset: ConsumerOffset) -> None:
        self.offsets[(offset.group, offset.topic, offset.partition)] = offset

    def rewind_offset(self, offset: ConsumerOffset, expected: int) -> bool:
        self.rewinds.append((offset, expected))
        if self.before_rewind is not None:
            meanwhile, self.before_rewind = self.before_rewind, None
            meanwhile()
        key = (offset.group, offset.topic, offset.partition)
        current = self.offsets.get(key)
        if current is None or current.next_offset != expected:
            return False
        self.offsets[key] = ConsumerOffset(
            offset.group,
            offset.topic,
            offset.partition,
            offset.next_offset,
            offset.topic_id or current.topic_id,
        )
        return True


def _replay(events: Sequence[CanMutateAggregate[UUID]]) -> Case:
    case: Case | None = None
    for event in events:
        case = event.mutate(case)
    assert case is not None
    return case


def _same_letter(a: DeadLetter, b: DeadLetter) -> bool:
    return (a.origin, a.position, a.raw) == (b.origin, b.position, b.raw)


@dataclass
class FakeClient:
    """The KafkaConsumer calls of PartitionClient, for one topic's partitions."""

    topic: str
    starts: dict[int, int]
    ends: dict[int, int]
    assigned: set[TopicPartition] = field(default_factory=set)
    paused: set[TopicPartition] = field(default_factory=set)
    fetch_at: dict[TopicPartition, int] = field(default_factory=dict)  # where the next fetch reads
    highwaters: dict[TopicPartition, int] = field(default_factory=dict)

    def tp(self, partition: int) -> TopicPartition:
        return TopicPartition(self.topic, partition)

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.fetch_at[partition] = offset

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.fetch_at[tp] = self.starts[tp.partition]

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused |= set(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused -= set(partitions)

    def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.starts[tp.partition] for tp in partitions}

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp.partition] for tp in partitions}

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters.get(partition)


@dataclass(frozen=True)
class FakeRecord:
    offset: int


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

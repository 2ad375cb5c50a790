"""What the write side needs of its store, and what it stores: the ports it owns.

The batch writer and the consumers depend on these types and ``Protocol``s only;
the PostgreSQL adapter (adapters/postgres/event_store.py and the table modules
beside it) implements them, and unit tests stand a fake in its place.

A store raises two errors of its own: ``StoreUnavailable`` (try again later) and
``ConcurrencyConflict`` (another writer was first: re-read, then try again).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from domain.case import Case


class StoreUnavailable(RuntimeError):
    """The store cannot take the call now; nothing was committed, so retrying is safe."""


class ConcurrencyConflict(RuntimeError):
    """Another writer appended to one of the cases first; re-read and retry."""


@dataclass(frozen=True)
class DeadLetter:
    """A rejected message: ``origin`` and ``position`` identify it, so a redelivery is not
    stored twice. The position is a file's line number, or for Kafka (origin
    ``kafka:<topic>:<partition>``) the message's offset."""

    origin: str
    position: int | None
    raw: bytes
    error_kind: str
    reason: str
    rule: str | None = None
    field: str | None = None
    application_number: str | None = None
    event_id: UUID | None = None
    topic: str | None = None
    partition: int | None = None
    key: bytes | None = None
    # The Kafka record's headers, as they came (a binary-mode CloudEvent's attributes).
    headers: tuple[tuple[str, bytes], ...] = ()
    # Stored without its raw bytes (only their checksum): it would bring back personal
    # data of a person whose data was erased.
    raw_dropped: bool = False


@dataclass(frozen=True)
class ConsumerOffset:
    """The next offset to read for a consumer group's partition, stored with the events.

    ``topic_id`` names the log the offset belongs to (consumers/kafka/log_identity.py);
    None from a broker without topic ids.
    """

    group: str
    topic: str
    partition: int
    next_offset: int
    topic_id: UUID | None = None


@dataclass(frozen=True)
class PendingDeadLetter:
    """A Kafka dead letter not yet on the dead-letter topic, as the outbox hands it out."""

    id: int
    raw: bytes
    key: bytes | None
    error_kind: str
    reason: str
    rule: str | None
    field: str | None
    topic: str | None
    partition: int | None
    offset: int | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class RetrySource:
    """A dead letter's message as it first came, to feed in again: where it was, its
    bytes and, from Kafka, its topic, partition, key and headers."""

    position: int | None
    raw: bytes
    topic: str | None
    partition: int | None
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class CaseRepository(Protocol):
    """What the batch writer needs: read cases, know who holds an event_id, save a batch."""

    def load_readable(
        self, ids: Sequence[UUID]
    ) -> tuple[dict[UUID, Case], dict[UUID, Exception]]: ...

    def event_id_owners(self, event_ids: Sequence[UUID]) -> dict[UUID, UUID]: ...

    def erased_people(self, people: Sequence[str]) -> set[str]:
        """Those of ``people`` (UCIs, representatives' emails) whose personal data was
        erased (a tombstone an operator has not lifted): a new file for one of them is
        refused, not given a fresh key."""
        ...

    def save(
        self,
        cases: Sequence[Case],
        dead_letters: Sequence[DeadLetter] = (),
        offsets: Sequence[ConsumerOffset] = (),
    ) -> None:
        """One transaction: the cases' pending events, the dead letters, the offsets.

        Raises ConcurrencyConflict when another writer was first, StoreUnavailable
        when the store cannot be reached; either way nothing was saved.
        """
        ...


class DeadLetterLookup(Protocol):
    def dead_lettered(self, origin: str, positions: Sequence[tuple[int, bytes]]) -> set[int]:
        """Positions of ``origin`` already dead-lettered with the same bytes (an earlier run's)."""
        ...


class IngestStore(CaseRepository, DeadLetterLookup, Protocol):
    """What file ingestion needs."""


class OffsetStore(Protocol):
    """The consumer group's partition positions, as stored with the events."""

    def stored_offsets(self, group: str, topic: str) -> dict[int, int]:
        """partition -> next offset to read, as last committed with the events."""
        ...

    def stored_topic_ids(self, group: str, topic: str) -> dict[int, UUID | None]:
        """partition -> the topic id of the log its stored offset was read from."""
        ...

    def rewind_offset(self, offset: ConsumerOffset, expected: int) -> bool:
        """Set a partition's offset back to ``offset.next_offset`` if it still is
        ``expected``; False when another consumer moved it first."""
        ...


class KafkaStore(OffsetStore, DeadLetterLookup, Protocol):
    """What the Kafka consumer needs besides its batch writer."""


class LagStore(OffsetStore, Protocol):
    """What the lag report reads."""

    def unpublished_dead_letters(self, topic: str) -> int:
        """Dead letters of messages read from ``topic`` not yet on the dead-letter topic."""
        ...


class ClaimedDeadLetters(Protocol):
    """Dead letters claimed for publishing; the claim lasts while its context is open."""

    @property
    def rows(self) -> Sequence[PendingDeadLetter]: ...

    def mark_published(self, done: Sequence[tuple[int, str | None]]) -> None:
        """Mark rows (id, why a pointer went instead, or None) published in the claim."""
        ...


class DeadLetterOutbox(Protocol):
    """The dead letters as an outbox: what the dead-letter publisher needs."""

    def claim_unpublished(
        self, topic: str, limit: int, hold_ms: int
    ) -> AbstractContextManager[ClaimedDeadLetters]:
        """Lock up to ``limit`` unpublished Kafka dead letters read from ``topic``, oldest
        first, skipping rows another publisher holds; marks are committed when the
        context closes without error. ``hold_ms``: how long the claim may sit idle."""
        ...


class DeadLetterRetries(Protocol):
    """The dead letters as the source of retries (consumers/dead_letter_retry.py)."""

    def retry_source(self, dead_letter_id: int) -> RetrySource | None:
        """The message of dead letter ``dead_letter_id``; None when there is no such one."""
        ...

    def mark_retried(self, dead_letter_id: int, origin: str) -> tuple[str, str] | None:
        """Mark the dead letter retried; the (error kind, reason) of the newest dead
        letter of ``origin`` (the retry's own, when it was rejected again)."""
        ...

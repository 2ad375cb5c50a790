"""Where each partition this member holds stands: placed from the store, checked against the log.

Every position comes from PostgreSQL (``consumer_offsets``). The rebalance callbacks
run inside ``poll`` on kafka-python's network thread, so on assignment they only
pause the partitions and note that their positions must come from the store; the
loop reads the store on its own thread (``sync``), where waiting for it blocks no
heartbeat. After a failed batch every partition is held the same way until the
store answers again (``hold``).

A stored offset that belongs to a lost log (the topic id changed: the topic was
recreated or the broker lost its data, see log_identity) or lies beyond the log
end has one policy (docs/kafka.md): log it as an error, move the stored offset
back to the log start and re-read; event_id deduplication and the dead-letter
check turn whatever was stored before into no-ops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar
from uuid import UUID

import structlog
from kafka import TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from consumers.kafka.log_identity import MetadataPending, replaced
from consumers.kafka.stats import ConsumeStats
from consumers.ports import ConsumerOffset, OffsetStore

log = structlog.get_logger("casetrack.kafka")

METADATA_WAIT = 0.1  # seconds between looks for fresh metadata before placing partitions
JOINING_POLL_MS = 100  # partitions arrive inside a poll: keep it short until they do


class PartitionClient(Protocol):
    """The KafkaConsumer calls the positions make (a fake stands in for it in unit tests)."""

    def assignment(self) -> set[TopicPartition]: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def seek_to_beginning(self, *partitions: TopicPartition) -> None: ...

    def pause(self, *partitions: TopicPartition) -> None: ...

    def resume(self, *partitions: TopicPartition) -> None: ...

    def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...


class Record(Protocol):
    @property
    def offset(self) -> int: ...


R = TypeVar("R", bound=Record)


class PartitionPositions:
    """The next offset of each partition this member holds, as stored, and the
    partitions held until the store gives theirs (``unsynced``)."""

    def __init__(
        self,
        store: OffsetStore,
        group: str,
        topic: str,
        stats: ConsumeStats,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.group, self.topic, self.stats = store, group, topic, stats
        self._clock = clock
        self._positions: dict[TopicPartition, int] = {}  # next offset, as stored
        self._unsynced: set[TopicPartition] = set()  # position not yet read from the store
        self._suspect: dict[TopicPartition, int] = {}  # polls seeing high watermark < position
        self._log_ids: dict[TopicPartition, UUID | None] = {}  # the log a position is in
        self._retry_at = 0.0

    def offsets(self) -> dict[int, int]:
        """Partition -> next offset, for the partitions this member holds and has placed."""
        return {tp.partition: offset for tp, offset in dict(self._positions).items()}

    def placed(self) -> dict[TopicPartition, int]:
        return dict(self._positions)

    def forget(self) -> None:
        """A new connection: the next member's assignment places the partitions again."""
        self._positions.clear()
        self._unsynced.clear()
        self._suspect.clear()

    # ------------------------------------------------------------ rebalances

    def assigned(self, client: PartitionClient, assigned: set[TopicPartition]) -> None:
        """Network thread: hold the partitions until their stored offsets are read."""
        log.info("partitions assigned", topic=self.topic, partitions=_numbers(assigned))
        if not assigned:
            return
        client.pause(*assigned)
        # A placeholder position, so the client asks for no committed offset meanwhile.
        client.seek_to_beginning(*assigned)
        self._unsynced |= assigned
        self._retry_at = 0.0

    def revoked(self, revoked: set[TopicPartition]) -> None:
        log.info("partitions revoked", topic=self.topic, partitions=_numbers(revoked))
        for tp in revoked:
            self._positions.pop(tp, None)
            self._unsynced.discard(tp)
            self._suspect.pop(tp, None)
            self._log_ids.pop(tp, None)

    # ------------------------------------------------------------ placing from the store

    def sync_due(self) -> bool:
        """Partitions are held and their next look at the store is due."""
        return bool(self._unsynced) and self._clock() >= self._retry_at

    def poll_timeout_ms(self, client: PartitionClient, timeout: int) -> int:
        """At most ``timeout``, so that held partitions are placed when due."""
        if not client.assignment():
            # Joining: partitions arrive inside a poll, held until synced after it returns.
            timeout = min(timeout, JOINING_POLL_MS)
        if self._unsynced:
            timeout = min(timeout, max(0, int((self._retry_at - self._clock()) * 1000)))
        return timeout

    def sync(self, client: PartitionClient, topic_id: Callable[[], UUID | None]) -> None:
        """Seek held partitions to their stored offsets (the log start if none) and resume.

        ``topic_id`` gives the broker's topic id (raising MetadataPending while the
        client's metadata may be stale). A stored offset of a lost log (another topic
        id) is rewound to the log start first.
        """
        held = self._unsynced & client.assignment()
        self._unsynced &= held
        if not held:
            return
        try:
            log_id = topic_id()
        except MetadataPending:
            self._retry_at = self._clock() + METADATA_WAIT
            return
        stored = self.store.stored_offsets(self.group, self.topic)
        stored_ids = self.store.stored_topic_ids(self.group, self.topic)
        synced: set[TopicPartition] = set()
        for tp in sorted(held):
            offset = stored.get(tp.partition)
            stored_id = stored_ids.get(tp.partition)
            self._suspect.pop(tp, None)
            if offset is not None and replaced(stored_id, log_id):
                if self._rewind_replaced(client, tp, offset, stored_id, log_id):
                    synced.add(tp)
                continue
            if offset is None:
                client.seek_to_beginning(tp)
                self._positions.pop(tp, None)
            else:
                client.seek(tp, offset)
                self._positions[tp] = offset
            self._log_ids[tp] = stored_id or log_id
            synced.add(tp)
            log.info(
                "resuming at stored offset",
                topic=tp.topic,
                partition=tp.partition,
                offset=offset if offset is not None else "log start",
            )
        if synced:
            client.resume(*synced)
        self._unsynced -= synced

    def hold(self, client: PartitionClient, delay: float) -> None:
        """Nothing of the failed batch was committed: seek every partition back, hold
        them all and read their positions from the store again after ``delay`` seconds."""
        assigned = client.assignment()
        for tp in assigned:
            if tp in self._positions:
                client.seek(tp, self._positions[tp])
        if assigned:
            client.pause(*assigned)
        self._unsynced |= assigned
        self._retry_at = self._clock() + delay

    # ------------------------------------------------------------ batches

    def writable(
        self,
        client: PartitionClient,
        tp: TopicPartition,
        records: Sequence[R],
        stored: int | None,
        log_id: UUID | MetadataPending | None,
    ) -> list[R]:
        """The records polled for ``tp`` that are to be written now, given its ``stored``
        offset as read for this poll and the broker's topic id (MetadataPending while
        it may be stale). None of them while the partition's position is not settled or
        the records come from another log; records below the stored offset (another member
        stored them first, when it had the partition) are skipped."""
        if tp in self._unsynced:
            return []  # its position is not settled yet: these records come again
        if not self._same_log(client, tp, records[0].offset, stored, log_id):
            return []
        fresh = [r for r in records if stored is None or r.offset >= stored]
        if len(fresh) < len(records):
            self.stats.redelivered += len(records) - len(fresh)
            log.info(
                "redelivered offsets skipped",
                topic=tp.topic,
                partition=tp.partition,
                offset=records[0].offset,
                stored_offset=stored,
            )
        if not fresh:
            assert stored is not None
            client.seek(tp, stored)
            self._positions[tp] = stored
        return fresh

    def next_offset(self, tp: TopicPartition, next_offset: int) -> ConsumerOffset:
        """What a batch of ``tp`` ending before ``next_offset`` stores with its events."""
        return ConsumerOffset(
            self.group, tp.topic, tp.partition, next_offset, self._log_ids.get(tp)
        )

    def advanced(self, tp: TopicPartition, next_offset: int) -> None:
        """A batch of ``tp`` was stored: its position is the offset stored with it."""
        self._positions[tp] = next_offset

    def held(self, client: PartitionClient) -> dict[TopicPartition, int]:
        """Where each partition poll was reading stands (the stored offset, or the log
        start), leaving out those known to be at their log end: nothing there to decode."""
        tps = [tp for tp in client.assignment() if tp not in self._unsynced]
        unplaced = [tp for tp in tps if tp not in self._positions]
        starts = client.beginning_offsets(unplaced) if unplaced else {}
        positions = {tp: self._positions.get(tp, starts.get(tp, 0)) for tp in tps}
        return {
            tp: offset
            for tp, offset in positions.items()
            if (highwater := client.highwater(tp)) is None or highwater > offset
        }

    # ------------------------------------------------------------ a replaced log

    def _same_log(
        self,
        client: PartitionClient,
        tp: TopicPartition,
        fetched_at: int,
        stored: int | None,
        log_id: UUID | MetadataPending | None,
    ) -> bool:
        """Whether records fetched for ``tp`` may be written: their log is the position's.

        Until the client has metadata from after its last lost connection, the
        records are fetched again later; from a replaced log, nothing is written
        and the partition is re-read from the log start.
        """
        expected = self._log_ids.get(tp)
        if isinstance(log_id, MetadataPending) or (log_id is None and expected is not None):
            client.seek(tp, fetched_at)
            return False
        if replaced(expected, log_id):
            self._rewind_replaced(client, tp, stored, expected, log_id)
            return False
        self._log_ids[tp] = expected or log_id
        return True

    def _rewind_replaced(
        self,
        client: PartitionClient,
        tp: TopicPartition,
        stored: int | None,
        stored_id: UUID | None,
        log_id: UUID | None,
    ) -> bool:
        """The policy for a stored offset of a lost log: say so loudly, re-read from the start.

        False when another member moved the offset meanwhile: the partition waits
        for its position from the store again.
        """
        self.stats.log_replaced += 1
        start = client.beginning_offsets([tp])[tp]
        log.error(
            "LOG REPLACED: the topic id changed, so the stored offset belongs to a log the"
            " broker no longer has (topic recreated or broker data lost); re-reading from"
            " the log start (stored events are no-ops)",
            topic=tp.topic,
            partition=tp.partition,
            offset=stored,
            log_start=start,
            stored_topic_id=str(stored_id),
            topic_id=str(log_id),
        )
        if stored is not None:
            rewound = ConsumerOffset(self.group, tp.topic, tp.partition, start, log_id)
            if not self.store.rewind_offset(rewound, expected=stored):
                client.pause(tp)
                self._unsynced.add(tp)
                self._positions.pop(tp, None)
                return False
        client.seek(tp, start)
        self._positions[tp] = start
        self._log_ids[tp] = log_id
        return True

    # ------------------------------------------------------------ beyond the log end

    def check_log_ends(
        self, client: PartitionClient, polled: Mapping[TopicPartition, Sequence[Record]]
    ) -> None:
        """Catch brokers that answer a fetch past the log end with nothing instead of an error.

        A high watermark below the position, on two polls running, means the
        position is past the end: the first may be left from before a seek.
        """
        for tp, position in list(self._positions.items()):
            highwater = client.highwater(tp)
            if tp in polled or tp in self._unsynced or highwater is None or highwater >= position:
                self._suspect.pop(tp, None)
                continue
            self._suspect[tp] = self._suspect.get(tp, 0) + 1
            if self._suspect[tp] >= 2:
                self.out_of_range(client, tp, position, log_end=highwater)

    def out_of_range_at(
        self, client: PartitionClient, offsets: Iterable[tuple[TopicPartition, int]]
    ) -> None:
        """A fetch was refused as out of range (a real Kafka's answer past the end)."""
        for tp, offset in offsets:
            self.out_of_range(client, tp, offset)

    def truncated(self, client: PartitionClient, partitions: Iterable[TopicPartition]) -> None:
        """The client found the logs of ``partitions`` diverged from their positions."""
        for tp in list(partitions):
            if tp in self._positions:
                self.out_of_range(client, tp, self._positions[tp])

    def out_of_range(
        self,
        client: PartitionClient,
        tp: TopicPartition,
        position: int,
        log_end: int | None = None,
    ) -> None:
        """``position`` lies outside the log: before its start (retention deleted messages
        unread: go on from the start), or beyond its end (re-read from the start)."""
        self._suspect.pop(tp, None)
        start = client.beginning_offsets([tp])[tp]
        end = log_end if log_end is not None else client.end_offsets([tp])[tp]
        where = {"topic": tp.topic, "partition": tp.partition, "offset": position}
        if position < start:
            log.error(
                "stored offset is before the log start: messages were deleted unread",
                log_start=start,
                **where,
            )
            client.seek(tp, start)
            self._positions[tp] = start
            return
        if position <= end:  # raced with new messages arriving: nothing is wrong
            client.seek(tp, position)
            return
        self.stats.beyond_end += 1
        log.error(
            "STORED OFFSET IS BEYOND THE LOG END: the topic was recreated or the broker lost"
            " its data; re-reading from the log start (stored events are no-ops)",
            log_start=start,
            log_end=end,
            **where,
        )
        rewound = ConsumerOffset(self.group, tp.topic, tp.partition, start)
        if self.store.rewind_offset(rewound, expected=position):
            client.seek(tp, start)
            self._positions[tp] = start
        else:  # another member moved it meanwhile: take the position from the store again
            client.pause(tp)
            self._unsynced.add(tp)
            self._positions.pop(tp, None)


class Rebalance(ConsumerRebalanceListener):
    """Hands kafka-python's rebalance callbacks (network thread) to the positions."""

    def __init__(self, positions: PartitionPositions, client: PartitionClient) -> None:
        self.positions, self.client = positions, client

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.positions.revoked(set(revoked))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.positions.assigned(self.client, set(assigned))


def _numbers(partitions: Iterable[TopicPartition]) -> list[int]:
    return sorted(tp.partition for tp in partitions)

"""The Kafka channel: case events from a topic into the store, each exactly once in effect.

Every partition's position lives in PostgreSQL (``consumer_offsets``), written
in the transaction that appends the events it covers: on start, on every
rebalance and after a database outage the consumer seeks to the stored
offsets, so a crash at any moment resumes where the store stands. Kafka's
committed offsets are written after the database commit, for monitoring only.

All messages of one poll for one partition are one batch, one transaction.
Poison messages become dead letters in that transaction and are then sent to
the dead-letter topic (an outbox, see dead_letter_publisher), so they never
hold a partition up.

A batch that cannot be decoded (corrupt, unknown codec) becomes one dead
letter holding its raw bytes, and the offset moves past it (record_batches).

A stored offset that belongs to a lost log (the topic id changed: the topic was
recreated or the broker lost its data, see log_identity) or lies beyond the log
end has one policy (docs/kafka.md): log it as an error, move the stored offset
back to the log start and re-read; event_id deduplication and the dead-letter
check turn whatever was stored before into no-ops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, LogTruncationError, OffsetOutOfRangeError
from kafka.structs import OffsetAndMetadata
from psycopg.sql import SQL, Identifier

from adapters.postgres.event_store import CaseStore, ConcurrencyConflict, ConsumerOffset
from consumers.batch import BatchWriter, Message
from consumers.dead_letter_publisher import DeadLetterPublisher
from consumers.file_ingest import Summary, parse_line
from consumers.log_identity import MetadataPending, broker_topic_id, listed_topic_id, replaced
from consumers.record_batches import DECODE_ERRORS, RawBatch, find_undecodable, require_codecs
from domain.backoff import RetryBackoff as Backoff
from domain.commands import Outcome, RecordCaseEvent

log = structlog.get_logger("casetrack.kafka")

# The store cannot take the batch now; nothing was committed, so retrying is safe.
RETRY_LATER: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    ConcurrencyConflict,
)
DLQ_RETRY_SECONDS = 5.0
CLOSE_TIMEOUT_MS = 5_000
BOOTSTRAP_TIMEOUT_MS = 5_000
METADATA_WAIT = 0.1  # seconds between looks for fresh metadata before placing partitions


@dataclass(frozen=True)
class ConsumerSettings:
    """Where to read and how; the timeouts are kafka-python's, in milliseconds."""

    bootstrap_servers: str
    topic: str = "case-events"
    group: str = "casetrack"
    dlq_topic: str | None = None  # default: "<topic>.dlq"
    max_poll_records: int = 500
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 30_000
    fetch_max_wait_ms: int = 200
    poll_timeout_ms: int = 500
    backoff_initial: float = 0.5  # seconds, doubled per failed retry
    backoff_max: float = 30.0

    @property
    def dead_letter_topic(self) -> str:
        return self.dlq_topic or f"{self.topic}.dlq"

    def consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": self.group,
            "client_id": "casetrack-consumer",
            "enable_auto_commit": False,
            # Positions always come from PostgreSQL; an out-of-range fetch must
            # surface here instead of being silently reset by the client.
            "auto_offset_reset": "none",
            "max_poll_records": self.max_poll_records,
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "max_poll_interval_ms": self.max_poll_interval_ms,
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
            # Notice a topic created again (after a broker restart) within half a minute.
            "metadata_max_age_ms": 30_000,
        }

    def producer_config(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": "casetrack-dead-letters",
            # Not idempotent: a broker that restarts without its state (the embedded one
            # always does) forgets the producer id, and an idempotent producer then fails
            # every send until it is replaced. Idempotence buys nothing here: publishing is
            # at least once anyway, and readers drop repeats by dead_letter_id.
            "enable_idempotence": False,
            "acks": "all",
            "linger_ms": 5,
            "max_block_ms": 10_000,
            "request_timeout_ms": 10_000,
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        }


@dataclass
class ConsumeStats(Summary):
    """What a run did (the ingestion outcomes and more); shown by the CLI, read by tests."""

    batches: int = 0
    redelivered: int = 0  # messages below the stored offset, skipped
    database_errors: int = 0
    kafka_errors: int = 0
    beyond_end: int = 0
    log_replaced: int = 0  # partitions whose stored offset belonged to a lost log
    dead_letters_published: int = 0
    undecodable_batches: int = 0

    def add_all(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.add(outcome)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Reconnect(Exception):
    """This KafkaConsumer must not poll again: close it, pause, connect anew."""

    def __init__(self, pause: float) -> None:
        super().__init__(pause)
        self.pause = pause


class KafkaCaseConsumer:
    """Consumes one topic as a member of a consumer group until ``run``'s stop event is set.

    Several processes with the same group share the partitions. The rebalance
    callbacks run inside ``poll`` on kafka-python's network thread, so they only
    pause partitions and note that their positions must come from the store; the
    database is read on this thread, where waiting for it blocks no heartbeat.
    """

    def __init__(
        self,
        store: CaseStore,
        settings: ConsumerSettings,
        *,
        writer: BatchWriter | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.writer = writer or BatchWriter(store)
        self.stats = ConsumeStats()
        self._consumer: KafkaConsumer | None = None
        self._publisher: DeadLetterPublisher | None = None
        self._positions: dict[TopicPartition, int] = {}  # next offset, as stored
        self._unsynced: set[TopicPartition] = set()  # position not yet read from the store
        self._suspect: dict[TopicPartition, int] = {}  # polls seeing high watermark < position
        self._log_ids: dict[TopicPartition, UUID | None] = {}  # the log a position is in
        self._backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self._retry_at = 0.0
        self._dlq_due = True  # rows left unpublished by an earlier run
        self._dlq_retry_at = 0.0

    @property
    def positions(self) -> dict[int, int]:
        """Partition -> next offset, for the partitions this member holds and has placed."""
        return {tp.partition: offset for tp, offset in dict(self._positions).items()}

    # ------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> ConsumeStats:
        """Consume until ``stop`` is set, then finish the batch, commit, leave the group."""
        require_codecs()
        s = self.settings
        while not stop.is_set():
            clients = self._connect(stop)
            if clients is None:
                break
            consumer, producer = clients
            self._consumer = consumer
            self._publisher = DeadLetterPublisher(
                self.store, producer, s.topic, s.dead_letter_topic
            )
            log.info("consuming", topic=s.topic, group=s.group, dlq_topic=s.dead_letter_topic)
            pause = None
            try:
                consumer.subscribe([s.topic], listener=_Rebalance(self))
                while not stop.is_set():
                    self._step(consumer)
            except _Reconnect as e:
                pause = e.pause
            finally:
                self._close(consumer, producer)
            if pause is None:
                break
            self._positions.clear()  # the next member's assignment places them again
            self._unsynced.clear()
            self._suspect.clear()
            stop.wait(pause)
        log.info("stopped", topic=s.topic, group=s.group, **self.stats.as_dict())
        return self.stats

    def _connect(self, stop: threading.Event) -> tuple[KafkaConsumer, KafkaProducer] | None:
        """Both clients, once the broker answers; None if stopped first."""
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        while not stop.is_set():
            try:
                consumer = KafkaConsumer(**self.settings.consumer_config())
                try:
                    return consumer, KafkaProducer(**self.settings.producer_config())
                except KafkaError:
                    consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)
                    raise
            except KafkaError as e:
                delay = backoff.failed()
                log.warning(
                    "broker unavailable; retrying",
                    error=type(e).__name__,
                    retry_in=round(delay, 2),
                )
                stop.wait(delay)
        return None

    def _step(self, consumer: KafkaConsumer) -> None:
        try:
            if self._unsynced and time.monotonic() >= self._retry_at:
                self._sync(consumer)
            try:
                polled = consumer.poll(
                    timeout_ms=self._poll_timeout_ms(consumer),
                    max_records=self.settings.max_poll_records,
                )
            except OffsetOutOfRangeError as e:  # a real Kafka's answer to a fetch past the end
                for tp, offset in _partition_offsets(e):
                    self._out_of_range(consumer, tp, offset)
                return
            except LogTruncationError as e:
                for tp in list(e.divergent_offsets):
                    if tp in self._positions:
                        self._out_of_range(consumer, tp, self._positions[tp])
                return
            except KafkaError as e:
                if isinstance(e, DECODE_ERRORS):
                    self._unreadable(consumer, e)
                raise
            except Exception as e:  # a codec library's own error, raised through poll
                self._unreadable(consumer, e)
            if polled:
                self._write(consumer, polled)
            self._check_log_ends(consumer, polled)
            if self._dlq_due and time.monotonic() >= self._dlq_retry_at:
                self._publish()
        except RETRY_LATER as e:
            self.stats.database_errors += 1
            self._hold(consumer, "store unavailable", e)
        except KafkaError as e:  # the client reconnects by itself; positions are set again
            self.stats.kafka_errors += 1
            self._hold(consumer, "broker error", e)

    def _poll_timeout_ms(self, consumer: KafkaConsumer) -> int:
        timeout = self.settings.poll_timeout_ms
        if not consumer.assignment():
            # Joining: partitions arrive inside a poll, held until synced after it returns.
            timeout = min(timeout, 100)
        if self._unsynced:
            timeout = min(timeout, max(0, int((self._retry_at - time.monotonic()) * 1000)))
        return timeout

    # ------------------------------------------------------------ batches

    def _write(
        self, consumer: KafkaConsumer, polled: Mapping[TopicPartition, Sequence[ConsumerRecord]]
    ) -> None:
        s = self.settings
        stored = self.store.stored_offsets(s.group, s.topic)
        try:
            log_id: UUID | MetadataPending | None = broker_topic_id(consumer, s.topic)
        except MetadataPending as e:
            log_id = e
        commits: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in polled.items():
            if tp in self._unsynced:
                continue  # its position is not settled yet: these records come again
            floor = stored.get(tp.partition)
            if not self._same_log(consumer, tp, records[0].offset, floor, log_id):
                continue
            fresh = [r for r in records if floor is None or r.offset >= floor]
            if len(fresh) < len(records):
                # Another member stored these first (it had the partition before us).
                self.stats.redelivered += len(records) - len(fresh)
                log.info(
                    "redelivered offsets skipped",
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=records[0].offset,
                    stored_offset=floor,
                )
            if not fresh:
                assert floor is not None
                consumer.seek(tp, floor)
                self._positions[tp] = floor
                continue
            next_offset = self._write_batch(tp, fresh)
            self._positions[tp] = next_offset
            commits[tp] = OffsetAndMetadata(next_offset, "", -1)
        if commits:
            self._backoff.succeeded()  # only a stored batch shows the store and broker are back
            self._commit_to_kafka(consumer, commits)

    def _write_batch(self, tp: TopicPartition, records: Sequence[ConsumerRecord]) -> int:
        s = self.settings
        origin = f"kafka:{tp.topic}:{tp.partition}"
        raws = [(r.offset, r.value if r.value is not None else b"") for r in records]
        judged = self.store.dead_lettered(origin, raws)  # by a run that read this log before
        messages = [
            Message(
                origin,
                offset,
                raw,
                parse_line(raw),
                already_dead_lettered=offset in judged,
                topic=tp.topic,
                partition=tp.partition,
                key=record.key,
            )
            for record, (offset, raw) in zip(records, raws, strict=True)
        ]
        next_offset = records[-1].offset + 1
        with structlog.contextvars.bound_contextvars(topic=tp.topic, partition=tp.partition):
            outcomes = self.writer.write(
                messages,
                offsets=[
                    ConsumerOffset(
                        s.group, tp.topic, tp.partition, next_offset, self._log_ids.get(tp)
                    )
                ],
            )
        self.stats.batches += 1
        self.stats.add_all(outcomes)
        for message, outcome in zip(messages, outcomes, strict=True):
            if outcome is Outcome.REJECTED and not message.already_dead_lettered:
                self._dlq_due = True
                parsed = message.parsed
                number = parsed.application_number if isinstance(parsed, RecordCaseEvent) else None
                log.info(
                    "dead-lettered",
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=message.line_number,
                    application_number=number,
                    event_id=str(parsed.event_id) if isinstance(parsed, RecordCaseEvent) else None,
                )
        log.info(
            "batch stored",
            topic=tp.topic,
            partition=tp.partition,
            offset=records[0].offset,
            next_offset=next_offset,
            messages=len(messages),
        )
        return next_offset

    def _commit_to_kafka(
        self, consumer: KafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        """Informational: lag tools read it; the consumer never does."""
        try:
            consumer.commit_async(offsets, callback=_on_kafka_commit)
        except KafkaError as e:
            log.debug("kafka commit skipped", error=type(e).__name__)

    def _publish(self) -> None:
        assert self._publisher is not None
        try:
            self._publisher.publish_pending()
            self._dlq_due = False
        except KafkaError as e:
            self._dlq_retry_at = time.monotonic() + DLQ_RETRY_SECONDS
            log.warning(
                "dead-letter topic unavailable; will retry",
                error=type(e).__name__,
                retry_in=DLQ_RETRY_SECONDS,
            )
        finally:  # rows of a failed round that did go count too
            self.stats.dead_letters_published = self._publisher.published

    def _unreadable(self, consumer: KafkaConsumer, error: Exception) -> None:
        """poll failed inside a record batch: dead-letter the batch, then reconnect.

        Never returns: polling this KafkaConsumer again would spin (record_batches).
        """
        self.stats.kafka_errors += 1
        found = None
        try:
            positions = self._held_positions(consumer)
            found = find_undecodable(
                self.settings.bootstrap_servers, positions, BOOTSTRAP_TIMEOUT_MS
            )
            if found is not None:
                self._dead_letter_batch(found)
                raise _Reconnect(0.0)
        except (KafkaError, *RETRY_LATER) as e:
            log.warning("undecodable batch not recorded yet", error=type(e).__name__)
        delay = self._backoff.failed()
        log.error(
            "could not read the records polled; reconnecting",
            error=type(error).__name__,
            retry_in=round(delay, 2),
        )
        raise _Reconnect(delay)

    def _held_positions(self, consumer: KafkaConsumer) -> dict[TopicPartition, int]:
        """Where each partition poll was reading stands (the stored offset, or the log
        start), leaving out those known to be at their log end: nothing there to decode."""
        tps = [tp for tp in consumer.assignment() if tp not in self._unsynced]
        unplaced = [tp for tp in tps if tp not in self._positions]
        starts = consumer.beginning_offsets(unplaced) if unplaced else {}
        positions = {tp: self._positions.get(tp, starts.get(tp, 0)) for tp in tps}
        return {
            tp: offset
            for tp, offset in positions.items()
            if (highwater := consumer.highwater(tp)) is None or highwater > offset
        }

    def _dead_letter_batch(self, found: RawBatch) -> None:
        """The batch as one dead letter, in one transaction with the offset after it."""
        s, tp = self.settings, found.partition
        origin = f"kafka:{tp.topic}:{tp.partition}"
        judged = self.store.dead_lettered(origin, [(found.offset, found.raw)])
        message = Message(
            origin,
            found.offset,
            found.raw,
            found.error,
            already_dead_lettered=found.offset in judged,
            topic=tp.topic,
            partition=tp.partition,
        )
        offset = ConsumerOffset(s.group, tp.topic, tp.partition, found.next_offset)
        self.stats.add_all(self.writer.write([message], offsets=[offset]))
        self.stats.undecodable_batches += 1
        self._dlq_due = True
        self._backoff.succeeded()
        log.error(
            "undecodable record batch dead-lettered and skipped",
            topic=tp.topic,
            partition=tp.partition,
            offset=found.offset,
            next_offset=found.next_offset,
            codec=found.codec,
            reason=str(found.error),
        )

    # ------------------------------------------------------------ positions

    def _assigned(self, assigned: set[TopicPartition]) -> None:
        """Network thread: hold the partitions until their stored offsets are read."""
        consumer = self._consumer
        assert consumer is not None
        log.info("partitions assigned", topic=self.settings.topic, partitions=_numbers(assigned))
        if not assigned:
            return
        consumer.pause(*assigned)
        # A placeholder position, so the client asks for no committed offset meanwhile.
        consumer.seek_to_beginning(*assigned)
        self._unsynced |= assigned
        self._retry_at = 0.0

    def _revoked(self, revoked: set[TopicPartition]) -> None:
        log.info("partitions revoked", topic=self.settings.topic, partitions=_numbers(revoked))
        for tp in revoked:
            self._positions.pop(tp, None)
            self._unsynced.discard(tp)
            self._suspect.pop(tp, None)
            self._log_ids.pop(tp, None)

    def _sync(self, consumer: KafkaConsumer) -> None:
        """Seek held partitions to their stored offsets (the log start if none) and resume.

        A stored offset of a lost log (another topic id) is rewound to the log start first.
        """
        held = self._unsynced & consumer.assignment()
        self._unsynced &= held
        if not held:
            return
        group, topic = self.settings.group, self.settings.topic
        try:
            log_id = broker_topic_id(consumer, topic)
        except MetadataPending:
            self._retry_at = time.monotonic() + METADATA_WAIT
            return
        stored = self.store.stored_offsets(group, topic)
        stored_ids = self.store.stored_topic_ids(group, topic)
        synced: set[TopicPartition] = set()
        for tp in sorted(held):
            offset = stored.get(tp.partition)
            stored_id = stored_ids.get(tp.partition)
            self._suspect.pop(tp, None)
            if offset is not None and replaced(stored_id, log_id):
                if self._rewind_replaced(consumer, tp, offset, stored_id, log_id):
                    synced.add(tp)
                continue
            if offset is None:
                consumer.seek_to_beginning(tp)
                self._positions.pop(tp, None)
            else:
                consumer.seek(tp, offset)
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
            consumer.resume(*synced)
        self._unsynced -= synced

    def _same_log(
        self,
        consumer: KafkaConsumer,
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
            consumer.seek(tp, fetched_at)
            return False
        if replaced(expected, log_id):
            self._rewind_replaced(consumer, tp, stored, expected, log_id)
            return False
        self._log_ids[tp] = expected or log_id
        return True

    def _rewind_replaced(
        self,
        consumer: KafkaConsumer,
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
        start = consumer.beginning_offsets([tp])[tp]
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
            rewound = ConsumerOffset(self.settings.group, tp.topic, tp.partition, start, log_id)
            if not self.store.rewind_offset(rewound, expected=stored):
                consumer.pause(tp)
                self._unsynced.add(tp)
                self._positions.pop(tp, None)
                return False
        consumer.seek(tp, start)
        self._positions[tp] = start
        self._log_ids[tp] = log_id
        return True

    def _hold(self, consumer: KafkaConsumer, what: str, error: Exception) -> None:
        """Nothing of the failed batch was committed: hold every partition until the
        store gives their positions again, after a growing pause."""
        delay = self._backoff.failed()
        log.warning(
            f"{what}; offsets stay put, retrying",
            error=type(error).__name__,
            retry_in=round(delay, 2),
        )
        assigned = consumer.assignment()
        for tp in assigned:
            if tp in self._positions:
                consumer.seek(tp, self._positions[tp])
        if assigned:
            consumer.pause(*assigned)
        self._unsynced |= assigned
        self._retry_at = time.monotonic() + delay

    def _check_log_ends(
        self, consumer: KafkaConsumer, polled: Mapping[TopicPartition, Sequence[ConsumerRecord]]
    ) -> None:
        """Catch brokers that answer a fetch past the log end with nothing instead of an error.

        A high watermark below the position, on two polls running, means the
        position is past the end: the first may be left from before a seek.
        """
        for tp, position in list(self._positions.items()):
            highwater = consumer.highwater(tp)
            if tp in polled or tp in self._unsynced or highwater is None or highwater >= position:
                self._suspect.pop(tp, None)
                continue
            self._suspect[tp] = self._suspect.get(tp, 0) + 1
            if self._suspect[tp] >= 2:
                self._out_of_range(consumer, tp, position, log_end=highwater)

    def _out_of_range(
        self, consumer: KafkaConsumer, tp: TopicPartition, position: int, log_end: int | None = None
    ) -> None:
        self._suspect.pop(tp, None)
        start = consumer.beginning_offsets([tp])[tp]
        end = log_end if log_end is not None else consumer.end_offsets([tp])[tp]
        where = {"topic": tp.topic, "partition": tp.partition, "offset": position}
        if position < start:
            log.error(
                "stored offset is before the log start: messages were deleted unread",
                log_start=start,
                **where,
            )
            consumer.seek(tp, start)
            self._positions[tp] = start
            return
        if position <= end:  # raced with new messages arriving: nothing is wrong
            consumer.seek(tp, position)
            return
        self.stats.beyond_end += 1
        log.error(
            "STORED OFFSET IS BEYOND THE LOG END: the topic was recreated or the broker lost"
            " its data; re-reading from the log start (stored events are no-ops)",
            log_start=start,
            log_end=end,
            **where,
        )
        rewound = ConsumerOffset(self.settings.group, tp.topic, tp.partition, start)
        if self.store.rewind_offset(rewound, expected=position):
            consumer.seek(tp, start)
            self._positions[tp] = start
        else:  # another member moved it meanwhile: take the position from the store again
            consumer.pause(tp)
            self._unsynced.add(tp)
            self._positions.pop(tp, None)

    # ------------------------------------------------------------ shutdown

    def _close(self, consumer: KafkaConsumer, producer: KafkaProducer) -> None:
        if self._dlq_due:
            try:
                self._publish()
            except RETRY_LATER as e:
                log.warning("dead letters left for the next run", error=type(e).__name__)
        if self._positions:
            try:
                consumer.commit(
                    {tp: OffsetAndMetadata(n, "", -1) for tp, n in self._positions.items()},
                    timeout_ms=CLOSE_TIMEOUT_MS,
                )
            except KafkaError as e:
                log.debug("final kafka commit skipped", error=type(e).__name__)
        # Leaving the group hands the partitions to the other members at once.
        consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)
        producer.close(timeout=5)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, owner: KafkaCaseConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.owner._revoked(set(revoked))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.owner._assigned(set(assigned))


def _on_kafka_commit(offsets: object, response: object) -> None:
    if isinstance(response, Exception):
        log.debug("kafka commit failed", error=type(response).__name__)


def _partition_offsets(error: OffsetOutOfRangeError) -> list[tuple[TopicPartition, int]]:
    found = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    return [(tp, int(offset)) for tp, offset in found.items()]


def _numbers(partitions: Iterable[TopicPartition]) -> list[int]:
    return sorted(tp.partition for tp in partitions)


# ---------------------------------------------------------------- lag


@dataclass(frozen=True)
class PartitionLag:
    """One partition as ``casetrack consume --status`` shows it."""

    partition: int
    log_start: int
    log_end: int
    stored: int | None  # next offset in PostgreSQL: the truth
    committed: int | None  # Kafka's committed offset: informational
    stored_topic_id: str | None = None  # the log the stored offset was read from
    log_replaced: bool = False  # the broker's topic id is another: the stored offset is stale

    @property
    def lag(self) -> int:
        """Messages not yet stored; negative when the stored offset is beyond the log end."""
        return self.log_end - (self.stored if self.stored is not None else self.log_start)


@dataclass(frozen=True)
class LagReport:
    topic: str
    group: str
    partitions: list[PartitionLag] = field(default_factory=list)
    unpublished_dead_letters: int = 0
    topic_id: str | None = None  # the broker's, None without topic ids

    @property
    def total(self) -> int:
        return sum(max(p.lag, 0) for p in self.partitions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "group": self.group,
            "topic_id": self.topic_id,
            "total_lag": self.total,
            "unpublished_dead_letters": self.unpublished_dead_letters,
            "partitions": [{**asdict(p), "lag": p.lag} for p in self.partitions],
        }


def lag_report(store: CaseStore, settings: ConsumerSettings, timeout: float = 5.0) -> LagReport:
    """Per-partition lag in messages: log end minus the offset stored in PostgreSQL.

    The log end is the listed end offset, confirmed by the high watermark of a
    fetch from there: some brokers list the start of their last record batch.
    A stored offset read from another topic id than the broker's is flagged
    ``log_replaced``: the consumer re-reads that partition from its start when it
    next gets it (docs/kafka.md). Nothing joins the group, so a running consumer
    is not disturbed.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.group,
        client_id="casetrack-status",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        request_timeout_ms=int(timeout * 1000) + 1000,
        bootstrap_timeout_ms=int(timeout * 1000),
    )
    try:
        numbers = consumer.partitions_for_topic(settings.topic) or set()
        log_id = listed_topic_id(consumer, settings.topic)
        tps = [TopicPartition(settings.topic, n) for n in sorted(numbers)]
        if not tps:
            return LagReport(settings.topic, settings.group)
        starts = consumer.beginning_offsets(tps)
        listed = consumer.end_offsets(tps)
        ends = _confirmed_ends(consumer, listed, timeout)
        committed = {tp: consumer.committed(tp, timeout_ms=int(timeout * 1000)) for tp in tps}
    finally:
        consumer.close(autocommit=False)
    stored = store.stored_offsets(settings.group, settings.topic)
    stored_ids = store.stored_topic_ids(settings.group, settings.topic)
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(
            SQL(
                "SELECT count(*) AS n FROM {}.dead_letters"
                " WHERE published_at IS NULL AND topic = %s AND origin LIKE 'kafka:%%'"
            ).format(Identifier(store.schema)),
            (settings.topic,),
        )
        row = curs.fetchone()
    return LagReport(
        settings.topic,
        settings.group,
        [
            PartitionLag(
                tp.partition,
                starts[tp],
                ends[tp],
                stored.get(tp.partition),
                committed[tp],
                _text(stored_ids.get(tp.partition)),
                tp.partition in stored and replaced(stored_ids.get(tp.partition), log_id),
            )
            for tp in tps
        ],
        int(row["n"]) if row else 0,
        _text(log_id),
    )


def _text(topic_id: UUID | None) -> str | None:
    return None if topic_id is None else str(topic_id)


def _confirmed_ends(
    consumer: KafkaConsumer, listed: Mapping[TopicPartition, int], timeout: float
) -> dict[TopicPartition, int]:
    consumer.assign(list(listed))
    for tp, offset in listed.items():
        consumer.seek(tp, offset)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=100, max_records=1)
        if all(consumer.highwater(tp) is not None for tp in listed):
            break
    return {tp: max(end, consumer.highwater(tp) or 0) for tp, end in listed.items()}

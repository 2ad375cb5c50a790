"""The Kafka consumer's loop: case events from a topic into the store, each exactly once in effect.

Every partition's position lives in PostgreSQL (``consumer_offsets``), written
in the transaction that appends the events it covers: on start, on every
rebalance and after a database outage the consumer seeks to the stored
offsets (positions.py), so a crash at any moment resumes where the store stands.
Kafka's committed offsets are written after the database commit, for monitoring
only.

All messages of one poll for one partition are one batch, one transaction.
Poison messages become dead letters in that transaction and are then sent to
the dead-letter topic (an outbox, see dead_letter_publisher and
dead_letter_schedule), so they never hold a partition up.

A batch that cannot be decoded (corrupt, unknown codec) becomes one dead
letter holding its raw bytes, and the offset moves past it (record_batches).

The consumer builds none of its collaborators: the batch writer and the broker
clients are given (adapters/bootstrap.py wires them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, LogTruncationError, OffsetOutOfRangeError
from kafka.structs import OffsetAndMetadata

from consumers.batch import BatchWriter, Message
from consumers.file_ingest import parse_line
from consumers.kafka.dead_letter_publisher import DeadLetterPublisher
from consumers.kafka.dead_letter_schedule import DeadLetterSchedule
from consumers.kafka.log_identity import MetadataPending, broker_topic_id
from consumers.kafka.positions import PartitionPositions, Rebalance
from consumers.kafka.record_batches import DECODE_ERRORS, RawBatch, require_codecs
from consumers.kafka.settings import CLOSE_TIMEOUT_MS, ConsumerSettings
from consumers.kafka.stats import ConsumeStats
from consumers.ports import ConcurrencyConflict, ConsumerOffset, KafkaStore, StoreUnavailable
from domain.backoff import RetryBackoff
from domain.commands import Outcome, RecordCaseEvent

log = structlog.get_logger("casetrack.kafka")

# Nothing of the batch was committed, so retrying is safe.
RETRY_LATER: tuple[type[Exception], ...] = (StoreUnavailable, ConcurrencyConflict)
# An undecodable batch could not be found or stored now: reconnect, and look again then.
_NOT_RECORDED: tuple[type[Exception], ...] = (KafkaError, *RETRY_LATER)


@dataclass(frozen=True)
class KafkaClients:
    """How the consumer gets its broker clients, anew for each connection."""

    consumer: Callable[[], KafkaConsumer]
    producer: Callable[[], KafkaProducer]
    publisher: Callable[[KafkaProducer], DeadLetterPublisher]
    # The undecodable batch at one of the positions, read from the broker undecoded.
    undecodable: Callable[[Mapping[TopicPartition, int]], RawBatch | None]


class _Reconnect(Exception):
    """This KafkaConsumer must not poll again: close it, pause, connect anew."""

    def __init__(self, pause: float) -> None:
        super().__init__(pause)
        self.pause = pause


class KafkaCaseConsumer:
    """Consumes one topic as a member of a consumer group until ``run``'s stop event is set.

    Several processes with the same group share the partitions; each partition's
    position is kept by ``PartitionPositions``.
    """

    def __init__(
        self,
        store: KafkaStore,
        settings: ConsumerSettings,
        *,
        writer: BatchWriter,
        clients: KafkaClients,
    ) -> None:
        self.store = store
        self.settings = settings
        self.writer = writer
        self.clients = clients
        self.stats = ConsumeStats()
        self._partitions = PartitionPositions(store, settings.group, settings.topic, self.stats)
        self._dead_letters = DeadLetterSchedule(self.stats)
        self._backoff = RetryBackoff(settings.backoff_initial, settings.backoff_max)

    @property
    def positions(self) -> dict[int, int]:
        """Partition -> next offset, for the partitions this member holds and has placed."""
        return self._partitions.offsets()

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
            self._dead_letters.publish_with(self.clients.publisher(producer))
            log.info("consuming", topic=s.topic, group=s.group, dlq_topic=s.dead_letter_topic)
            pause = None
            try:
                consumer.subscribe([s.topic], listener=Rebalance(self._partitions, consumer))
                while not stop.is_set():
                    self._step(consumer)
            except _Reconnect as e:
                pause = e.pause
            finally:
                self._close(consumer, producer)
            if pause is None:
                break
            self._partitions.forget()
            stop.wait(pause)
        log.info("stopped", topic=s.topic, group=s.group, **self.stats.as_dict())
        return self.stats

    def _connect(self, stop: threading.Event) -> tuple[KafkaConsumer, KafkaProducer] | None:
        """Both clients, once the broker answers; None if stopped first."""
        backoff = RetryBackoff(self.settings.backoff_initial, self.settings.backoff_max)
        while not stop.is_set():
            try:
                consumer = self.clients.consumer()
                try:
                    return consumer, self.clients.producer()
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
        partitions = self._partitions
        try:
            if partitions.sync_due():
                partitions.sync(consumer, lambda: broker_topic_id(consumer, self.settings.topic))
            try:
                polled = consumer.poll(
                    timeout_ms=partitions.poll_timeout_ms(consumer, self.settings.poll_timeout_ms),
                    max_records=self.settings.max_poll_records,
                )
            except OffsetOutOfRangeError as e:  # a real Kafka's answer to a fetch past the end
                partitions.out_of_range_at(consumer, _partition_offsets(e))
                return
            except LogTruncationError as e:
                partitions.truncated(consumer, e.divergent_offsets)
                return
            except KafkaError as e:
                if isinstance(e, DECODE_ERRORS):
                    self._unreadable(consumer, e)
                raise
            except Exception as e:  # a codec library's own error, raised through poll
                self._unreadable(consumer, e)
            if polled:
                self._write(consumer, polled)
            partitions.check_log_ends(consumer, polled)
            self._dead_letters.publish_if_due()
        except RETRY_LATER as e:
            self.stats.database_errors += 1
            self._hold(consumer, "store unavailable", e)
        except KafkaError as e:  # the client reconnects by itself; positions are set again
            self.stats.kafka_errors += 1
            self._hold(consumer, "broker error", e)

    def _hold(self, consumer: KafkaConsumer, what: str, error: Exception) -> None:
        """Nothing of the failed batch was committed: hold every partition until the
        store gives their positions again, after a growing pause."""
        delay = self._backoff.failed()
        log.warning(
            f"{what}; offsets stay put, retrying",
            error=type(error).__name__,
            retry_in=round(delay, 2),
        )
        self._partitions.hold(consumer, delay)

    # ------------------------------------------------------------ batches

    def _write(
        self, consumer: KafkaConsumer, polled: Mapping[TopicPartition, Sequence[ConsumerRecord]]
    ) -> None:
        s = self.settings
        stored = self.store.stored_offsets(s.group, s.topic)
        log_id: UUID | MetadataPending | None
        try:
            log_id = broker_topic_id(consumer, s.topic)
        except MetadataPending as e:
            log_id = e
        commits: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in polled.items():
            fresh = self._partitions.writable(
                consumer, tp, records, stored.get(tp.partition), log_id
            )
            if not fresh:
                continue
            next_offset = self._write_batch(tp, fresh)
            self._partitions.advanced(tp, next_offset)
            commits[tp] = OffsetAndMetadata(next_offset, "", -1)
        if commits:
            self._backoff.succeeded()  # only a stored batch shows the store and broker are back
            self._commit_to_kafka(consumer, commits)

    def _write_batch(self, tp: TopicPartition, records: Sequence[ConsumerRecord]) -> int:
        origin = f"kafka:{tp.topic}:{tp.partition}"
        raws = [(r.offset, r.value if r.value is not None else b"") for r in records]
        judged = self.store.dead_lettered(origin, raws)  # by a run that read this log before
        messages = []
        for record, (offset, raw) in zip(records, raws, strict=True):
            headers = tuple((name, value or b"") for name, value in record.headers or ())
            messages.append(
                Message(
                    origin,
                    offset,
                    raw,
                    parse_line(raw, headers, record.key),
                    already_dead_lettered=offset in judged,
                    topic=tp.topic,
                    partition=tp.partition,
                    key=record.key,
                    headers=headers,
                )
            )
        next_offset = records[-1].offset + 1
        with structlog.contextvars.bound_contextvars(topic=tp.topic, partition=tp.partition):
            outcomes = self.writer.write(
                messages, offsets=[self._partitions.next_offset(tp, next_offset)]
            )
        self.stats.batches += 1
        self.stats.add_all(outcomes)
        for message, outcome in zip(messages, outcomes, strict=True):
            if outcome is Outcome.REJECTED and not message.already_dead_lettered:
                self._dead_letters.stored()
                parsed = message.parsed
                number = parsed.application_number if isinstance(parsed, RecordCaseEvent) else None
                log.info(
                    "dead-lettered",
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=message.position,
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

    # ------------------------------------------------------------ undecodable batches

    def _unreadable(self, consumer: KafkaConsumer, error: Exception) -> None:
        """poll failed inside a record batch: dead-letter the batch, then reconnect.

        Never returns: polling this KafkaConsumer again would spin (record_batches).
        """
        self.stats.kafka_errors += 1
        found = None
        try:
            found = self.clients.undecodable(self._partitions.held(consumer))
            if found is not None:
                self._dead_letter_batch(found)
                raise _Reconnect(0.0)
        except _NOT_RECORDED as e:
            log.warning("undecodable batch not recorded yet", error=type(e).__name__)
        delay = self._backoff.failed()
        log.error(
            "could not read the records polled; reconnecting",
            error=type(error).__name__,
            retry_in=round(delay, 2),
        )
        raise _Reconnect(delay)

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
        self._dead_letters.stored()
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

    # ------------------------------------------------------------ shutdown

    def _close(self, consumer: KafkaConsumer, producer: KafkaProducer) -> None:
        if self._dead_letters.due:
            try:
                self._dead_letters.publish()
            except RETRY_LATER as e:
                log.warning("dead letters left for the next run", error=type(e).__name__)
        placed = self._partitions.placed()
        if placed:
            try:
                consumer.commit(
                    {tp: OffsetAndMetadata(n, "", -1) for tp, n in placed.items()},
                    timeout_ms=CLOSE_TIMEOUT_MS,
                )
            except KafkaError as e:
                log.debug("final kafka commit skipped", error=type(e).__name__)
        # Leaving the group hands the partitions to the other members at once.
        consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)
        producer.close(timeout=5)


def _on_kafka_commit(offsets: object, response: object) -> None:
    if isinstance(response, Exception):
        log.debug("kafka commit failed", error=type(response).__name__)


def _partition_offsets(error: OffsetOutOfRangeError) -> list[tuple[TopicPartition, int]]:
    found = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    return [(tp, int(offset)) for tp, offset in found.items()]

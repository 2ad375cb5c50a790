"""Publishes Kafka dead letters to the dead-letter topic: an outbox on the dead_letters table.

The consumer stores a dead letter in the transaction that moves its offset;
publishing happens afterwards, so a crash in between must lose nothing: rows
stay ``published_at IS NULL`` until the broker acknowledged them, and the next
run sends them. Delivery to the topic is therefore at least once; the
``dead_letter_id`` header lets readers drop repeats. Rows are claimed with
``FOR UPDATE SKIP LOCKED``, so consumers of one group never send a row twice
at the same time.

Each row's send succeeds or fails on its own: the rows the broker took are
marked even when others failed, so a failure never sends them again. A row too
large for the topic goes as a pointer (its headers, no key, no value) and its
``publish_error`` says why; the table keeps the bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError
from kafka.errors import RecordListTooLargeError as RecordListTooLarge
from kafka.producer.future import FutureRecordMetadata

from consumers.ports import DeadLetterOutbox, PendingDeadLetter

log = structlog.get_logger("casetrack.dead_letters")

# The record itself is too large (for the producer or the broker): sending it again cannot help.
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLarge)
# The header of a pointer (a dead letter too large for the topic): why its value is empty.
RAW_OMITTED = "raw_omitted"


def headers(row: PendingDeadLetter) -> list[tuple[str, bytes]]:
    """The original record's headers (a binary-mode CloudEvent stays one), then why and
    where from: no payload values, only the contract's own error texts. A reader taking
    the last header of a name gets ours."""
    values = {
        "dead_letter_id": row.id,
        "error_kind": row.error_kind,
        "reason": row.reason,
        "rule": row.rule,
        "field": row.field,
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
    }
    ours = [(name, str(value).encode()) for name, value in values.items() if value is not None]
    return [*row.headers, *ours]


def omitted(row: PendingDeadLetter, error: KafkaError) -> str:
    """The pointer's reason: sizes only, never the bytes."""
    key = len(row.key) if row.key is not None else 0
    return (
        f"{type(error).__name__}: too large for the topic (value {len(row.raw)} bytes,"
        f" key {key} bytes); the dead_letters row keeps them"
    )


class DeadLetterPublisher:
    """Sends unpublished dead letters read from ``source_topic`` to ``dlq_topic``."""

    def __init__(
        self,
        outbox: DeadLetterOutbox,
        producer: KafkaProducer,
        source_topic: str,
        dlq_topic: str,
        *,
        batch_size: int = 500,
        timeout: float = 10.0,
    ) -> None:
        self.outbox = outbox
        self.producer = producer
        self.source_topic = source_topic
        self.dlq_topic = dlq_topic
        self.batch_size = batch_size
        self.timeout = timeout
        self.published = 0  # rows marked published by this publisher, pointers included
        # The claimed rows stay locked while the broker is asked (two rounds at most: the
        # rows, then pointers; each a blocked send and a flush). The store ends sessions
        # idle in a transaction after 5 s: a broker stalling longer would cost the marks of
        # the rows it took, and they would be sent again.
        max_block = float(producer.config.get("max_block_ms", 60_000)) / 1000
        self._hold_ms = int((2 * (max_block + timeout) + 5) * 1000)

    def publish_pending(self) -> int:
        """Send every pending dead letter; return how many were sent.

        Raises the database's error when it is unavailable, and Kafka's first
        error of a round after marking the rows that did go: the rest stay
        pending for the next call.
        """
        sent = 0
        while True:
            with self.outbox.claim_unpublished(
                self.source_topic, self.batch_size, self._hold_ms
            ) as claim:
                rows = claim.rows
                if not rows:
                    return sent
                errors = self._send(rows, {})
                pointers = {
                    row.id: omitted(row, error)
                    for row in rows
                    if isinstance(error := errors[row.id], TOO_LARGE)
                }
                if pointers:
                    errors.update(self._send([r for r in rows if r.id in pointers], pointers))
                done = [row for row in rows if errors[row.id] is None]
                claim.mark_published([(r.id, pointers.get(r.id)) for r in done])
            self._log(done, pointers)
            sent += len(done)
            self.published += len(done)
            failed = [e for e in errors.values() if e is not None]
            if failed:
                raise failed[0]
            if len(rows) < self.batch_size:
                return sent

    def _send(
        self, rows: Sequence[PendingDeadLetter], pointers: Mapping[int, str]
    ) -> dict[int, KafkaError | None]:
        """Each row's outcome: None once the broker acknowledged it, else its error.

        Rows in ``pointers`` go without key and value, with the reason as a header.
        """
        futures: dict[int, FutureRecordMetadata] = {}
        errors: dict[int, KafkaError | None] = {}
        blocked: KafkaError | None = None  # the producer cannot send: each try would block
        for row in rows:
            if blocked is not None:
                errors[row.id] = blocked
                continue
            reason = pointers.get(row.id)
            try:
                futures[row.id] = self.producer.send(
                    self.dlq_topic,
                    key=None if reason or row.key is None else row.key,
                    value=b"" if reason else row.raw,
                    headers=headers(row) + ([(RAW_OMITTED, reason.encode())] if reason else []),
                )
            except KafkaError as e:  # checked before sending: too large, or no metadata
                errors[row.id] = e
                if not isinstance(e, TOO_LARGE):
                    blocked = e
        with contextlib.suppress(KafkaError):  # each future tells
            self.producer.flush(self.timeout)
        for row_id, future in futures.items():
            if not future.is_done:
                errors[row_id] = KafkaTimeoutError("not acknowledged in time")
            else:
                errors[row_id] = future.exception if future.failed() else None
        return errors

    def _log(self, done: Sequence[PendingDeadLetter], pointers: Mapping[int, str]) -> None:
        for row in done:
            where = {"topic": row.topic, "partition": row.partition}
            if row.id in pointers:
                log.warning(
                    "dead letter too large for the dead-letter topic; published a pointer",
                    dead_letter_id=row.id,
                    offset=row.offset,
                    dlq_topic=self.dlq_topic,
                    **where,
                )
            else:
                log.debug(
                    "dead letter published",
                    offset=row.offset,
                    dlq_topic=self.dlq_topic,
                    **where,
                )

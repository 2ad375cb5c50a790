"""Publishes Kafka dead letters to the dead-letter topic: an outbox on the dead_letters table.

The consumer stores a dead letter in the transaction that moves its offset;
publishing happens afterwards, so a crash in between must lose nothing: rows
stay ``published_at IS NULL`` until the broker acknowledged them, and the next
run sends them. Delivery to the topic is therefore at least once; the
``dead_letter_id`` header lets readers drop repeats. Rows are claimed with
``FOR UPDATE SKIP LOCKED``, so consumers of one group never send a row twice
at the same time.
"""

from __future__ import annotations

from typing import Any

import structlog
from kafka import KafkaProducer
from psycopg.sql import SQL, Identifier

from adapters.postgres.event_store import CaseStore

log = structlog.get_logger("casetrack.dead_letters")


def headers(row: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Why and where from: no payload values, only the contract's own error texts."""
    values = {
        "dead_letter_id": row["id"],
        "error_kind": row["error_kind"],
        "reason": row["reason"],
        "rule": row["rule"],
        "field": row["field"],
        "topic": row["topic"],
        "partition": row["partition"],
        "offset": row["line_number"],
    }
    return [(name, str(value).encode()) for name, value in values.items() if value is not None]


class DeadLetterPublisher:
    """Sends unpublished dead letters read from ``source_topic`` to ``dlq_topic``."""

    def __init__(
        self,
        store: CaseStore,
        producer: KafkaProducer,
        source_topic: str,
        dlq_topic: str,
        *,
        batch_size: int = 500,
        timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.producer = producer
        self.source_topic = source_topic
        self.dlq_topic = dlq_topic
        self.batch_size = batch_size
        self.timeout = timeout
        schema = Identifier(store.schema)
        self._claim = SQL(
            "SELECT id, raw, key, error_kind, reason, rule, field, topic, partition, line_number"
            " FROM {}.dead_letters WHERE published_at IS NULL AND topic = %s"
            " AND origin LIKE 'kafka:%%' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
        ).format(schema)
        self._mark = SQL(
            "UPDATE {}.dead_letters SET published_at = now() WHERE id = ANY(%s)"
        ).format(schema)

    def publish_pending(self) -> int:
        """Send every pending dead letter; return how many were sent.

        Raises the database's or Kafka's error when either is unavailable; the
        rows of the failed round stay pending.
        """
        sent = 0
        while True:
            with self.store.datastore.transaction(commit=True) as curs:
                curs.execute(self._claim, (self.source_topic, self.batch_size))
                rows = curs.fetchall()
                if not rows:
                    return sent
                futures = [
                    self.producer.send(
                        self.dlq_topic,
                        key=bytes(row["key"]) if row["key"] is not None else None,
                        value=bytes(row["raw"]),
                        headers=headers(row),
                    )
                    for row in rows
                ]
                self.producer.flush(self.timeout)
                for future in futures:
                    future.get(timeout=self.timeout)  # raises if the broker did not take it
                curs.execute(self._mark, ([row["id"] for row in rows],))
            for row in rows:
                log.debug(
                    "dead letter published",
                    topic=row["topic"],
                    partition=row["partition"],
                    offset=row["line_number"],
                    dlq_topic=self.dlq_topic,
                )
            sent += len(rows)
            if len(rows) < self.batch_size:
                return sent

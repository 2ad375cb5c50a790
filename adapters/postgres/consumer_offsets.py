"""The consumer_offsets table: each Kafka partition's next offset, stored with its events.

Offsets are written in the events' transaction (``store``, called by the recorder),
so the store and its offsets never disagree (docs/kafka.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from adapters.postgres.unavailable import raises_store_unavailable
from consumers.ports import ConsumerOffset

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.consumer_offsets ("
    " group_id text NOT NULL,"
    " topic text NOT NULL,"
    " partition integer NOT NULL,"
    " next_offset bigint NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now(),"
    " topic_id uuid,"
    " PRIMARY KEY (group_id, topic, partition))"
)
# Offsets stored before topic ids were kept: the consumer adopts the broker's on first use.
TOPIC_ID = "ALTER TABLE {schema}.consumer_offsets ADD COLUMN IF NOT EXISTS topic_id uuid"


class ConsumerOffsets:
    """The offsets of one schema. Methods that open their own transaction raise
    StoreUnavailable when the database cannot be reached."""

    def __init__(self, datastore: PostgresDatastore, schema: str) -> None:
        self.datastore = datastore
        table = SQL("{}.consumer_offsets").format(Identifier(schema))
        self._store = SQL(
            "INSERT INTO {} (group_id, topic, partition, next_offset,"
            " topic_id) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (group_id, topic, partition) DO UPDATE"
            " SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset),"
            " topic_id = COALESCE(consumer_offsets.topic_id, EXCLUDED.topic_id),"
            " updated_at = now()"
            " WHERE consumer_offsets.topic_id IS NULL OR EXCLUDED.topic_id IS NULL"
            " OR consumer_offsets.topic_id = EXCLUDED.topic_id"
        ).format(table)
        self._select = SQL(
            "SELECT partition, next_offset, topic_id FROM {} WHERE group_id = %s AND topic = %s"
        ).format(table)
        self._rewind = SQL(
            "UPDATE {} SET next_offset = %s,"
            " topic_id = COALESCE(%s, topic_id), updated_at = now()"
            " WHERE group_id = %s AND topic = %s AND partition = %s AND next_offset = %s"
        ).format(table)

    def store(self, curs: Cursor[DictRow], offsets: Sequence[ConsumerOffset]) -> None:
        """In the caller's transaction (the events'). Never move an offset backwards: a
        zombie consumer's late batch is a no-op.

        Nor across logs: a batch read from another topic id than the stored one (a
        member that has not noticed the topic was replaced) leaves the offset alone.
        """
        curs.executemany(
            self._store,
            [(o.group, o.topic, o.partition, o.next_offset, o.topic_id) for o in offsets],
        )

    def stored_offsets(self, group: str, topic: str) -> dict[int, int]:
        """partition -> next offset to read, as last committed with the events."""
        return {row["partition"]: row["next_offset"] for row in self._stored(group, topic)}

    def stored_topic_ids(self, group: str, topic: str) -> dict[int, UUID | None]:
        """partition -> the topic id of the log its stored offset was read from."""
        return {row["partition"]: row["topic_id"] for row in self._stored(group, topic)}

    @raises_store_unavailable
    def _stored(self, group: str, topic: str) -> list[DictRow]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select, (group, topic))
            return curs.fetchall()

    @raises_store_unavailable
    def rewind(self, offset: ConsumerOffset, expected: int) -> bool:
        """Set a partition's offset back to ``offset.next_offset`` if it still is ``expected``.

        The one move backwards: the topic was replaced, so the stored offset belongs to
        a lost log (docs/kafka.md); ``offset.topic_id``, when given, names the new one.
        False when another consumer moved it first.
        """
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._rewind,
                (
                    offset.next_offset,
                    offset.topic_id,
                    offset.group,
                    offset.topic,
                    offset.partition,
                    expected,
                ),
            )
            return curs.rowcount == 1

"""Consumer offsets in PostgreSQL: they never move back, and only with their events."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from psycopg.sql import SQL, Identifier

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from adapters.postgres.schema import init_schema
from consumers.batch import BatchWriter, Message
from consumers.file_ingest import parse_line
from consumers.ports import ConsumerOffset
from simulation import kafka_feed
from tests.stores import count, execute

GROUP, TOPIC = "group", "events"


def _offset(partition: int, next_offset: int, topic_id: UUID | None = None) -> ConsumerOffset:
    return ConsumerOffset(GROUP, TOPIC, partition, next_offset, topic_id)


def test_a_lower_offset_saved_after_a_higher_one_leaves_it_alone(store: CaseStore) -> None:
    """A zombie member's late batch (it lost the partition, then committed) undoes nothing."""
    store.save([], offsets=[_offset(0, 120), _offset(1, 7)])
    store.save([], offsets=[_offset(0, 40), _offset(1, 9)])  # partition 0: the late batch
    assert store.stored_offsets(GROUP, TOPIC) == {0: 120, 1: 9}


@pytest.mark.parametrize("table", [EVENTS_TABLE, "event_ids"])
def test_a_batch_whose_events_fail_to_insert_leaves_the_offset_where_it_was(
    store: CaseStore, table: str
) -> None:
    """The offset is written in the events' transaction: if their insert fails, it did not move.

    A trigger on the real table makes the insert fail after the offset was written
    in the transaction, every time.
    """
    lines = kafka_feed.feed(3, seed=21, duplicate_share=0.0, poison_share=0.0)
    messages = [
        Message("kafka:events:0", n, line.encode(), parse_line(line.encode()), topic=TOPIC)
        for n, line in enumerate(lines)
    ]
    store.save([], offsets=[_offset(0, 5)])
    schema = Identifier(store.schema)
    with store.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL(
                "CREATE FUNCTION {}.refuse() RETURNS trigger LANGUAGE plpgsql"
                " AS $$ BEGIN RAISE EXCEPTION 'insert refused by the test'; END $$"
            ).format(schema)
        )
        curs.execute(
            SQL(
                "CREATE TRIGGER refuse BEFORE INSERT ON {}.{}"
                " FOR EACH ROW EXECUTE FUNCTION {}.refuse()"
            ).format(schema, Identifier(table), schema)
        )

    with pytest.raises(Exception, match="insert refused by the test"):
        BatchWriter(store).write(messages, offsets=[_offset(0, 5 + len(messages))])

    assert store.stored_offsets(GROUP, TOPIC) == {0: 5}
    assert count(store, EVENTS_TABLE) == 0


def test_a_batch_read_from_another_log_leaves_the_offset_alone(store: CaseStore) -> None:
    """A member that has not noticed the topic was replaced cannot move the new log's offset."""
    old, new = uuid4(), uuid4()
    store.save([], offsets=[_offset(0, 10, new)])
    store.save([], offsets=[_offset(0, 500, old)])
    assert store.stored_offsets(GROUP, TOPIC) == {0: 10}
    assert store.stored_topic_ids(GROUP, TOPIC) == {0: new}
    store.save([], offsets=[_offset(0, 12, new)])
    assert store.stored_offsets(GROUP, TOPIC) == {0: 12}


def test_db_init_adds_the_topic_id_to_offsets_stored_before_it(
    database_url: str, store: CaseStore
) -> None:
    """An older schema gains the column; its offsets adopt the first topic id stored with them."""
    execute(store, "ALTER TABLE {schema}.consumer_offsets DROP COLUMN topic_id")
    execute(
        store,
        "INSERT INTO {schema}.consumer_offsets (group_id, topic, partition, next_offset)"
        " VALUES (%s, %s, 0, 30)",
        (GROUP, TOPIC),
    )
    init_schema(database_url, store.schema)
    init_schema(database_url, store.schema)
    assert store.stored_topic_ids(GROUP, TOPIC) == {0: None}
    first = uuid4()
    store.save([], offsets=[_offset(0, 31, first)])
    assert store.stored_offsets(GROUP, TOPIC) == {0: 31}
    assert store.stored_topic_ids(GROUP, TOPIC) == {0: first}

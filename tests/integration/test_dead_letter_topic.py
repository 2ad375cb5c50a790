"""The dead-letter topic on the real broker: a broker restart, a dead letter too large to send."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import LiteralString

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError

from adapters.kafka_broker import EmbeddedBroker
from adapters.postgres.event_store import CaseStore
from adapters.postgres.schema import init_schema
from consumers.kafka.dead_letter_publisher import DeadLetterPublisher
from consumers.ports import DeadLetter
from simulation import kafka_feed
from tests.integration.kafka_fixtures import (
    EXTERNAL,
    consuming,
    read_topic,
    settings,
    unique,
    wait_until,
)
from tests.stores import count, rows


def _poison(n: int, tag: str) -> list[str]:
    return [f"not json {tag} {i}" for i in range(n)]


def _ids(records: list[object]) -> list[int]:
    return [int(dict(r.headers)["dead_letter_id"]) for r in records]  # type: ignore[attr-defined]


def _dead_letter_ids(store: CaseStore, where: LiteralString) -> set[int]:
    return {r["id"] for r in rows(store, "SELECT id FROM {schema}.dead_letters WHERE " + where)}


@pytest.mark.skipif(bool(EXTERNAL), reason="restarts the embedded broker")
def test_dead_letters_reach_the_topic_again_after_a_broker_restart(store: CaseStore) -> None:
    """The producer's idempotence state dies with the broker; the consumer goes on publishing."""
    topic, group = unique("events"), unique("group")
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        config = settings(bootstrap, topic, group)
        with consuming(store, config) as running:
            # Enough before the restart that the new, shorter logs end below the stored
            # offsets: the consumer sees them as replaced and re-reads them (docs/kafka.md).
            valid = kafka_feed.feed(60, seed=19, duplicate_share=0.0, poison_share=0.0)
            first = kafka_feed.publish([*valid, *_poison(3, "before")], bootstrap, topic)
            wait_until(
                lambda: count(store, "dead_letters", "published_at IS NOT NULL") == 3, 30, "first"
            )
            before = _dead_letter_ids(store, "TRUE")

            broker.restart()
            second = kafka_feed.publish(_poison(3, "after"), bootstrap, topic)
            assert all(second[p] < first[p] for p in second), "the new log must be shorter"
            wait_until(lambda: count(store, "dead_letters") == 6, 60, "the new dead letters")
            wait_until(
                lambda: count(store, "dead_letters", "published_at IS NULL") == 0,
                30,
                "the new dead letters on the topic, without a restart of the consumer",
            )
            records = read_topic(bootstrap, config.dead_letter_topic, 3)
        assert running.error is None
    after = _dead_letter_ids(store, "TRUE") - before
    assert set(_ids(records)) == after  # the restarted broker's topic holds the new ones


def test_a_dead_letter_too_large_for_the_topic_holds_up_no_other(
    store: CaseStore, kafka: str
) -> None:
    """35 dead letters, the 18th over the producer's size limit: each row reaches the topic
    once, the large one as a pointer (no key, no value) and marked in its row."""
    topic = unique("events")
    config = settings(kafka, topic, unique("group"))
    raws = [f"not json {i}".encode() for i in range(35)]
    raws[17] = b"x" * 2_000_000  # over max_request_size (1 MiB)
    store.save(
        [],
        dead_letters=[
            DeadLetter(
                f"kafka:{topic}:0",
                i,
                raw,
                "invalid_json",
                "not JSON",
                topic=topic,
                partition=0,
                key=f"key-{i}".encode(),
            )
            for i, raw in enumerate(raws)
        ],
    )
    ids = sorted(_dead_letter_ids(store, "TRUE"))
    large = ids[17]
    producer = KafkaProducer(**config.producer_config())
    publisher = DeadLetterPublisher(
        store.dead_letters, producer, topic, config.dead_letter_topic, batch_size=10
    )
    try:
        for _ in range(3):  # as the consumer retries after a failed round
            with contextlib.suppress(KafkaError):
                publisher.publish_pending()
    finally:
        producer.close(timeout=5)

    records = read_topic(kafka, config.dead_letter_topic, len(ids))
    assert sorted(_ids(records)) == ids  # every row, each once
    by_id = {int(dict(r.headers)["dead_letter_id"]): r for r in records}
    pointer = by_id.pop(large)
    assert pointer.value == b"" and pointer.key is None
    assert "value 2000000 bytes" in dict(pointer.headers)["raw_omitted"].decode()
    assert all(r.value == raws[ids.index(i)] for i, r in by_id.items())
    assert count(store, "dead_letters", "published_at IS NULL") == 0
    assert _dead_letter_ids(store, "publish_error IS NOT NULL") == {large}


def test_db_init_adds_publish_error_to_a_dead_letters_table_from_before(
    database_url: str, schema: str, store: CaseStore
) -> None:
    store.save([], dead_letters=[DeadLetter("kafka:t:0", 1, b"{", "invalid_json", "not JSON")])
    with store.datastore.transaction(commit=True) as curs:  # a schema from an older release
        curs.execute(f"ALTER TABLE {schema}.dead_letters DROP COLUMN publish_error")
    init_schema(database_url, schema)
    init_schema(database_url, schema)  # and again: idempotent
    assert _dead_letter_ids(store, "publish_error IS NULL") == _dead_letter_ids(store, "TRUE")


@pytest.mark.skipif(bool(EXTERNAL), reason="pauses the embedded broker")
def test_a_broker_stall_longer_than_the_idle_transaction_limit_sends_each_row_once(
    store: CaseStore,
) -> None:
    """The rows are claimed in a transaction held while the broker is asked; a broker
    that stalls (a pause, a leader change) past the store's idle-in-transaction limit
    (5 s) must not cost the marks of the rows it took: none is sent again."""
    topic = unique("events")
    with EmbeddedBroker() as broker:
        config = settings(broker.bootstrap_servers, topic, unique("group"))
        store.save(
            [],
            dead_letters=[
                DeadLetter(
                    f"kafka:{topic}:0",
                    i,
                    f"not json {i}".encode(),
                    "invalid_json",
                    "x",
                    topic=topic,
                    partition=0,
                )
                for i in range(5)
            ],
        )
        producer = KafkaProducer(**config.producer_config())
        publisher = DeadLetterPublisher(
            store.dead_letters, producer, topic, config.dead_letter_topic
        )
        assert broker._process is not None
        pid = broker._process.pid
        try:
            os.kill(pid, signal.SIGSTOP)
            resume = threading.Timer(6.5, os.kill, (pid, signal.SIGCONT))
            resume.start()
            try:
                first = publisher.publish_pending()
            finally:
                resume.join()
            again = publisher.publish_pending()
        finally:
            os.kill(pid, signal.SIGCONT)
            producer.close(timeout=5)
        records = read_topic(broker.bootstrap_servers, config.dead_letter_topic, 5)
        assert (first, again) == (5, 0)
        assert count(store, "dead_letters", "published_at IS NULL") == 0
        assert sorted(_ids(records)) == sorted(_dead_letter_ids(store, "TRUE"))

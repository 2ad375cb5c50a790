"""Record batches as producers compress them, and batches no codec can read."""

from __future__ import annotations

import pytest
import simulate
from kafka import KafkaProducer

from adapters.postgres.event_store import CaseStore
from tests.integration.kafka_fixtures import (
    consuming,
    file_reference,
    kafka_broker,  # noqa: F401
    new_topic,
    project,
    settings,
    snapshot,
    unique,
    wait_until,
)

CODECS = ("gzip", "snappy", "lz4", "zstd")


@pytest.mark.parametrize("codec", CODECS)
def test_batches_of_every_codec_are_stored_exactly_once(
    database_url: str, schema: str, store: CaseStore, kafka: str, codec: str
) -> None:
    topic, group = new_topic(kafka), unique("group")
    lines = simulate.feed(40, seed=21, duplicate_share=0.02, poison_share=0.02)
    # A long linger: many records in each compressed batch.
    producer = KafkaProducer(
        bootstrap_servers=kafka, acks="all", linger_ms=50, compression_type=codec
    )
    try:
        ends = simulate.publish(lines, kafka, topic, producer=producer)
    finally:
        producer.close(timeout=10)

    with consuming(database_url, schema, settings(kafka, topic, group)) as running:
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 30, f"{codec} batches")
    assert running.stats.kafka_errors == 0
    project(store)
    assert snapshot(store, origins=False) == file_reference(database_url, lines)

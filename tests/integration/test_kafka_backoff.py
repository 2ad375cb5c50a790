"""Retries after store failures wait longer each time, until a batch is stored."""

from __future__ import annotations

from contextlib import closing
from itertools import pairwise

from adapters.postgres.event_store import CaseStore
from simulation import kafka_feed
from tests.integration.kafka_fixtures import (
    FailingSaves,
    RunningConsumer,
    new_topic,
    settings,
    unique,
    wait_until,
)
from tests.vault import TEST_VAULT


def test_pauses_between_failed_batches_grow(
    database_url: str, schema: str, store: CaseStore, kafka: str
) -> None:
    topic, group = new_topic(kafka, partitions=1), unique("group")
    ends = kafka_feed.publish(kafka_feed.feed(5, seed=22, poison_share=0.0), kafka, topic)
    config = settings(kafka, topic, group, backoff_initial=0.3, backoff_max=5.0)
    with closing(CaseStore(database_url, schema, TEST_VAULT)) as own:
        failing = FailingSaves(own, failures=4)
        with RunningConsumer(failing, config):
            wait_until(lambda: store.stored_offsets(group, topic) == ends, 30, "every message")
    gaps = [b - a for a, b in pairwise(failing.failed_at)]
    # 0.3, 0.6 and 1.2 s, each ±20 %, plus the same small overhead per retry.
    assert gaps[2] - gaps[0] > 0.5, gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps

"""Retries after store failures wait longer each time, until a batch is stored."""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

from adapters.postgres.event_store import CaseStore
from consumers.ports import StoreUnavailable
from simulation import kafka_feed
from tests.integration.kafka_fixtures import (
    RunningConsumer,
    kafka_broker,  # noqa: F401
    new_topic,
    settings,
    unique,
    wait_until,
)


class _FailingSaves:
    """The store, except that the first ``failures`` saves find the database gone.

    Reads still work, as when only writes fail (a full disk, a read-only replica).
    """

    def __init__(self, store: CaseStore, failures: int) -> None:
        self.store, self.failures = store, failures
        self.failed_at: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def save(self, *args: Any, **kwargs: Any) -> None:
        if len(self.failed_at) < self.failures:
            self.failed_at.append(time.monotonic())
            raise StoreUnavailable("connection refused (simulated)")
        self.store.save(*args, **kwargs)


def test_pauses_between_failed_batches_grow(
    database_url: str, schema: str, store: CaseStore, kafka: str
) -> None:
    topic, group = new_topic(kafka, partitions=1), unique("group")
    ends = kafka_feed.publish(kafka_feed.feed(5, seed=22, poison_share=0.0), kafka, topic)
    failing = _FailingSaves(CaseStore(database_url, schema), failures=4)
    config = settings(kafka, topic, group, backoff_initial=0.3, backoff_max=5.0)
    running = RunningConsumer(failing, config)
    try:
        running.start()
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 30, "every message")
        running.stop()
    finally:
        running.stop_event.set()
        failing.store.close()
    gaps = [b - a for a, b in pairwise(failing.failed_at)]
    # 0.3, 0.6 and 1.2 s, each ±20 %, plus the same small overhead per retry.
    assert gaps[2] - gaps[0] > 0.5, gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps

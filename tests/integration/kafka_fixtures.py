"""Kafka for the tests: topics, consumer settings, a consumer running on a thread (on a
store whose saves may fail), a topic read back, and waiting for a condition.

The ``kafka``, ``topic`` and ``group`` fixtures are in tests/integration/conftest.py.
Consumer timeouts are low: with the embedded broker a group join waits out
the rebalance timeout (max_poll_interval_ms).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from adapters.bootstrap import kafka_consumer
from adapters.postgres.event_store import CaseStore
from consumers.kafka.settings import ConsumerSettings
from consumers.kafka.stats import ConsumeStats
from consumers.ports import StoreUnavailable
from tests.vault import TEST_VAULT

EXTERNAL = os.environ.get("CASETRACK_TEST_KAFKA", "").strip()

FAST = {
    "session_timeout_ms": 3000,
    "heartbeat_interval_ms": 500,
    "max_poll_interval_ms": 6000,
    "fetch_max_wait_ms": 100,
    "poll_timeout_ms": 200,
    "backoff_initial": 0.3,
    "backoff_max": 2.0,
}


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_topic(bootstrap: str, partitions: int = 4, **config: Any) -> str:
    """A topic of its own for a test, created with ``partitions`` whatever the broker's default
    (``config``: the client's other settings, TLS and SASL)."""
    name = unique("events")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **config)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def settings(bootstrap: str, topic: str, group: str, **overrides: Any) -> ConsumerSettings:
    return ConsumerSettings(bootstrap, topic=topic, group=group, **{**FAST, **overrides})


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class RunningConsumer:
    """A KafkaCaseConsumer on a thread of its own, with a store of its own."""

    def __init__(self, store: Any, settings: ConsumerSettings) -> None:
        self.store = store
        self.consumer = kafka_consumer(store, settings)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def stats(self) -> ConsumeStats:
        return self.consumer.stats

    def _run(self) -> None:
        try:
            self.consumer.run(self.stop_event)
        except BaseException as e:
            self.error = e
            raise

    def start(self) -> RunningConsumer:
        self.thread.start()
        return self

    def stop(self, timeout: float = 30) -> ConsumeStats:
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "consumer did not stop"
        if self.error is not None:
            raise self.error
        return self.stats

    def __enter__(self) -> RunningConsumer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class FailingSaves:
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


@contextmanager
def consuming(store: CaseStore, settings: ConsumerSettings) -> Iterator[RunningConsumer]:
    """A consumer on a thread, with a store of its own on ``store``'s database and schema."""
    with (
        closing(CaseStore(store.url, store.schema, TEST_VAULT)) as own,
        RunningConsumer(own, settings) as running,
    ):
        yield running


def read_topic(
    bootstrap: str, topic: str, count: int, timeout: float = 20, **config: Any
) -> list[Any]:
    """The first ``count`` records of every partition of ``topic``, read without a group
    (``config``: the client's other settings, TLS and SASL)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100, **config)
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions:
            partitions = consumer.partitions_for_topic(topic)
            assert time.monotonic() < deadline, f"topic {topic} never appeared"
            if not partitions:
                time.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        while len(records) < count:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            assert time.monotonic() < deadline, f"{len(records)} of {count} records on {topic}"
        time.sleep(0.3)  # anything beyond ``count`` would show up now
        for batch in consumer.poll(timeout_ms=300).values():
            records.extend(batch)
    finally:
        consumer.close()
    return records

"""Faults while consuming from Kafka: SIGKILL, PostgreSQL going away, a broker restart."""

from __future__ import annotations

import json
import threading
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from adapters.bootstrap import kafka_lag as lag_report
from adapters.kafka_broker import EmbeddedBroker
from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from consumers.kafka.settings import ConsumerSettings
from simulation import kafka_feed
from tests import cli_process
from tests.integration.hashes import assert_hashes_intact
from tests.integration.kafka_fixtures import (
    EXTERNAL,
    FailingSaves,
    RunningConsumer,
    consuming,
    settings,
    unique,
    wait_until,
)
from tests.integration.snapshots import file_reference, project, snapshot
from tests.integration.tcp_proxy import TcpProxy
from tests.stores import count, scratch_store
from tests.vault import TEST_VAULT


def test_sigkill_mid_batch_then_restart_gives_the_uninterrupted_result(
    database_url: str, store: CaseStore, kafka: str, topic: str, group: str, cli_env: dict[str, str]
) -> None:
    lines = kafka_feed.feed(150, seed=14, duplicate_share=0.02, poison_share=0.01)
    ends = kafka_feed.publish(lines, kafka, topic)
    args = ["consume", "--bootstrap-servers", kafka, "--topic", topic]
    # Short timeouts: a restarted member waits until the killed one is evicted from the group.
    args += ["--group", group, "--max-poll-records", "40"]
    args += ["--session-timeout-ms", "2000", "--max-poll-interval-ms", "3000"]

    with scratch_store(database_url) as reference:
        config = settings(kafka, topic, unique("reference"))
        with consuming(reference, config):  # the uninterrupted run, meanwhile
            events = len(lines) * 0.9
            for threshold in (1, events / 3):
                with cli_process.running(args, cli_env) as proc:  # SIGKILLed when the block ends
                    wait_until(
                        lambda p=proc, n=threshold: (
                            count(store, EVENTS_TABLE) >= n or p.poll() is not None
                        ),
                        60,
                        f"{threshold} events",
                    )
                    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            with cli_process.running(args, cli_env) as proc:
                wait_until(lambda: store.stored_offsets(group, topic) == ends, 60, "the rest")
                wait_until(
                    lambda: count(store, "dead_letters", "published_at IS NULL") == 0, 10, "DLQ"
                )
                cli_process.stop_with_sigterm(proc)  # finish the batch, commit, leave, exit 0
            wait_until(lambda: reference.stored_offsets(config.group, topic) == ends, 60, "ref")
        assert_hashes_intact(store)  # no event without its chain link after the kills, none twice
        project(store)
        after_kills = snapshot(store)
        project(reference)
        uninterrupted = snapshot(reference)

    assert after_kills["event_ids"] == uninterrupted["event_ids"]
    assert after_kills == uninterrupted


def test_postgres_outage_holds_the_offsets_and_resumes_on_its_own(
    database_url: str, schema: str, store: CaseStore, kafka: str, topic: str, group: str
) -> None:
    lines = kafka_feed.feed(80, seed=15, duplicate_share=0.02, poison_share=0.01)
    half = len(lines) // 2
    proxy = TcpProxy(database_url).start()
    consumer_store = CaseStore(proxy.url, schema, TEST_VAULT)
    # Fail within a second when no connection can be had, instead of waiting 10 s for one.
    consumer_store.datastore.pool.timeout = 1.0
    running = RunningConsumer(consumer_store, settings(kafka, topic, group)).start()
    ends: dict[int, int] = {}
    try:
        # Connections killed while batches are being written: retried, nothing lost.
        publisher = threading.Thread(
            target=lambda: ends.update(kafka_feed.publish(lines[:half], kafka, topic, rate=400))
        )
        publisher.start()
        wait_until(lambda: bool(store.stored_offsets(group, topic)), 30, "consumption started")
        proxy.terminate_backends()
        publisher.join()
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 60, "the first half")

        # The database unreachable: errors, offsets held, no crash.
        proxy.cut()
        held = store.stored_offsets(group, topic)
        ends = _merged(ends, kafka_feed.publish(lines[half:], kafka, topic))
        wait_until(lambda: running.stats.database_errors >= 2, 30, "failed attempts")
        assert store.stored_offsets(group, topic) == held
        assert running.thread.is_alive() and running.error is None

        proxy.restore()
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 60, "the second half")
        running.stop()
    finally:
        running.stop_event.set()
        running.thread.join(30)
        consumer_store.close()
        proxy.close()
    project(store)
    assert snapshot(store, origins=False) == file_reference(database_url, lines)


def test_failed_batches_are_read_again_from_the_stored_offsets(
    database_url: str, schema: str, store: CaseStore, kafka: str, topic: str, group: str
) -> None:
    lines = kafka_feed.feed(40, seed=16, duplicate_share=0.02, poison_share=0.02)
    ends = kafka_feed.publish(lines, kafka, topic)
    config = settings(kafka, topic, group, max_poll_records=30)
    with (
        closing(CaseStore(database_url, schema, TEST_VAULT)) as own,
        RunningConsumer(FailingSaves(own, failures=4), config) as consumer,
    ):
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 60, "every message")
    assert consumer.stats.database_errors == 4
    project(store)
    assert snapshot(store, origins=False) == file_reference(database_url, lines)


@pytest.mark.skipif(bool(EXTERNAL), reason="restarts the embedded broker")
@pytest.mark.parametrize("topic_ids", [True, False], ids=["topic-ids", "no-topic-ids"])
def test_broker_restart_with_offsets_beyond_the_new_log_end(
    store: CaseStore, topic_ids: bool
) -> None:
    """A restarted memory broker has empty topics: stored offsets point past the end.

    The consumer reconnects, notices (by the new topic id, or without topic ids by the
    log end), re-reads from the log start and stores the new messages.
    """
    topic, group = unique("events"), unique("group")
    before = kafka_feed.feed(80, seed=17, duplicate_share=0.0, poison_share=0.0)
    after = kafka_feed.feed(8, seed=18, duplicate_share=0.0, poison_share=0.0)
    with EmbeddedBroker() as broker:
        config = settings(broker.bootstrap_servers, topic, group)
        if not topic_ids:
            config = _WithoutTopicIds(**asdict(config))
        # Published first: a client of the old protocol joins without the topic otherwise.
        first = kafka_feed.publish(before, broker.bootstrap_servers, topic)
        with consuming(store, config) as running:
            wait_until(lambda: store.stored_offsets(group, topic) == first, 60, "first feed")

            broker.restart()
            second = kafka_feed.publish(after, broker.bootstrap_servers, topic)
            assert all(second[p] < first[p] for p in second), "the new log must be shorter"
            wait_until(
                lambda: (
                    _covers(store.stored_offsets(group, topic), second)
                    and count(store, EVENTS_TABLE) == len(before) + len(after)
                ),
                60,
                "the second feed",
            )
        caught = running.stats.log_replaced if topic_ids else running.stats.beyond_end
        assert caught >= len(second)
        assert running.error is None
    stored = store.stored_offsets(group, topic)
    assert {p: stored[p] for p in second} == second  # rewound, then moved on from the start


@pytest.mark.skipif(bool(EXTERNAL), reason="restarts the embedded broker")
@pytest.mark.parametrize("consumer_running", [False, True], ids=["restarted", "running"])
def test_a_broker_refilled_past_the_stored_offsets_is_read_from_its_start(
    database_url: str,
    schema: str,
    store: CaseStore,
    consumer_running: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A broker back empty and refilled beyond the stored offsets before the consumer looks.

    The offsets look valid, but they belong to the lost log: the consumer must notice
    that the topic is another one (its topic id), say so, and read the new log from
    its start, so that nothing of it is skipped and every case gets its events in order.
    """
    topic, group = unique("events"), unique("group")
    before = kafka_feed.feed(20, seed=19, duplicate_share=0.0, poison_share=0.0)
    after = kafka_feed.feed(60, seed=20, duplicate_share=0.0, poison_share=0.0)
    with EmbeddedBroker() as broker:
        config = settings(broker.bootstrap_servers, topic, group)
        running = RunningConsumer(CaseStore(database_url, schema, TEST_VAULT), config).start()
        try:
            first = kafka_feed.publish(before, broker.bootstrap_servers, topic)
            wait_until(lambda: store.stored_offsets(group, topic) == first, 60, "first feed")
            if not consumer_running:
                running.stop()
            broker.restart()
            second = kafka_feed.publish(after, broker.bootstrap_servers, topic)
            assert all(second[p] > first[p] for p in first), "the new log must be longer"
            if not consumer_running:
                report = lag_report(store, config)
                assert [p.partition for p in report.partitions if p.log_replaced] == sorted(first)
                assert json.loads(json.dumps(report.as_dict()))["topic_id"] == report.topic_id
                restarted = CaseStore(database_url, schema, TEST_VAULT)
                running = RunningConsumer(restarted, config).start()
            wait_until(lambda: store.stored_offsets(group, topic) == second, 60, "second feed")
            running.stop()
        finally:
            running.stop_event.set()
            running.thread.join(30)
            running.store.close()
    project(store)
    assert snapshot(store, origins=False) == file_reference(database_url, before + after)
    assert running.stats.log_replaced >= 1
    logs = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line[:1] == "{"]
    replaced = [e for e in logs if e["event"].startswith("LOG REPLACED")]
    assert replaced and all(e["level"] == "error" for e in replaced)


@dataclass(frozen=True)
class _WithoutTopicIds(ConsumerSettings):
    """A consumer speaking Kafka 2.7's protocol: metadata before topic ids (Metadata v9)."""

    def consumer_config(self) -> dict[str, Any]:
        return {**super().consumer_config(), "api_version": (2, 7)}


def _covers(stored: dict[int, int], ends: dict[int, int]) -> bool:
    return all(stored.get(p) == n for p, n in ends.items())


def _merged(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    return {p: max(a.get(p, 0), b.get(p, 0)) for p in sorted({*a, *b})}


def test_consume_command_waits_for_the_database_at_start_up(
    database_url: str, store: CaseStore, kafka: str, topic: str, group: str, cli_env: dict[str, str]
) -> None:
    """A consumer started while PostgreSQL is away waits for it (as `casetrack project`
    does) instead of dying at start-up, and stops on SIGTERM meanwhile too."""
    ends = kafka_feed.publish(kafka_feed.feed(10, seed=16), kafka, topic)
    proxy = TcpProxy(database_url)
    env = {**cli_env, "CASETRACK_DATABASE_URL": proxy.url}
    args = ["consume", "--bootstrap-servers", kafka, "--topic", topic]
    args += ["--group", group, "--session-timeout-ms", "2000"]

    try:
        # The proxy is not listening yet: the database is away.
        with cli_process.running(args, env) as waiting:
            time.sleep(11.0)  # longer than a connection is waited for (10 s)
            assert waiting.poll() is None, waiting.communicate()[1].decode()[-2000:]
            cli_process.stop_with_sigterm(waiting, within=20)  # honoured while waiting

        with cli_process.running(args, env) as consumer:
            time.sleep(1.0)
            proxy.start()
            wait_until(lambda: store.stored_offsets(group, topic) == ends, 60, "the events")
            cli_process.stop_with_sigterm(consumer)
    finally:
        proxy.close()

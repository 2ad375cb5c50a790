"""Record batches of every codec, batches no codec can read, and SIGTERM in those states."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.net.compat import KafkaNetClient
from kafka.protocol.producer import ProduceRequest

from adapters.kafka_broker import free_port
from adapters.postgres.event_store import CaseStore
from simulation import kafka_feed
from tests import cli_process
from tests.integration.kafka_fixtures import (
    consuming,
    new_topic,
    read_topic,
    settings,
    unique,
    wait_until,
)
from tests.integration.snapshots import file_reference, project, snapshot
from tests.record_batches import BROKEN, CRC_AT, broken_batch
from tests.stores import count

CODECS = ("gzip", "snappy", "lz4", "zstd")


@pytest.mark.parametrize("codec", CODECS)
def test_batches_of_every_codec_are_stored_exactly_once(
    database_url: str, store: CaseStore, kafka: str, topic: str, group: str, codec: str
) -> None:
    lines = kafka_feed.feed(40, seed=21, duplicate_share=0.02, poison_share=0.02)
    # A long linger: many records in each compressed batch.
    producer = KafkaProducer(
        bootstrap_servers=kafka, acks="all", linger_ms=50, compression_type=codec
    )
    try:
        ends = kafka_feed.publish(lines, kafka, topic, producer=producer)
    finally:
        producer.close(timeout=10)

    with consuming(store, settings(kafka, topic, group)) as running:
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 30, f"{codec} batches")
    assert running.stats.kafka_errors == 0
    project(store)
    assert snapshot(store, origins=False) == file_reference(database_url, lines)


# ------------------------------------------------------------ undecodable batches


def _produce_raw(bootstrap: str, topic: str, partition: int, batch: bytes) -> None:
    """A ProduceRequest carrying ``batch`` as it is (a producer would build its own)."""
    client = KafkaNetClient(bootstrap_servers=bootstrap, client_id="raw-producer")
    try:
        client.check_version(timeout_ms=5000)
        client.poll(timeout_ms=5000, future=client.cluster.add_topic(topic))
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        data = ProduceRequest.TopicProduceData
        request = ProduceRequest(
            acks=-1,
            timeout_ms=5000,
            topic_data=[
                data(
                    name=topic,
                    partition_data=[data.PartitionProduceData(index=partition, records=batch)],
                )
            ],
            max_version=9,
        )
        response = client.send_and_receive(leader, request, timeout_ms=5000)
        assert response.responses[0].partition_responses[0].error_code == 0
    finally:
        client.close()


def _undecodable_topic(kafka: str, how: str) -> tuple[str, list[str], bytes, int, dict[int, int]]:
    """Two partitions of good messages; in partition 1, between them, a broken batch of
    valid events.

    Returns the topic, the good lines, the broken batch, its offset and the log ends.
    """
    topic = new_topic(kafka, partitions=2)
    good = kafka_feed.feed(12, seed=23, duplicate_share=0.0, poison_share=0.0)
    hidden = kafka_feed.feed(4, seed=24, duplicate_share=0.0, poison_share=0.0)  # other cases
    half = len(good) // 2
    before = kafka_feed.publish(good[:half], kafka, topic)
    batch = broken_batch([line.encode() for line in hidden], how)
    _produce_raw(kafka, topic, 1, batch)
    after = kafka_feed.publish(good[half:], kafka, topic)
    assert set(before) == set(after) == {0, 1}, "both partitions must carry good messages"
    assert after[1] - before[1] > len(hidden)
    return topic, good, batch, before[1], after


@pytest.mark.parametrize("how", BROKEN)
def test_an_undecodable_batch_is_one_dead_letter_and_the_partition_flows_on(
    database_url: str, store: CaseStore, kafka: str, group: str, how: str
) -> None:
    topic, good, batch, at, ends = _undecodable_topic(kafka, how)
    started = time.monotonic()
    with consuming(store, settings(kafka, topic, group)) as running:
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 30, "past the batch")
        wait_until(lambda: count(store, "dead_letters", "published_at IS NULL") == 0, 10, "DLQ")
        assert time.monotonic() - started < 30
    assert running.stats.undecodable_batches == 1
    project(store)
    got, reference = snapshot(store), file_reference(database_url, good)
    assert got["events"] == reference["events"] and got["views"] == reference["views"]
    [(origin, offset, kind, _rule, _field, raw)] = got["dead"]
    assert (origin, offset, kind) == (f"kafka:{topic}:1", at, "undecodable_batch")
    assert raw[CRC_AT:] == batch[CRC_AT:]  # as produced; the broker set the base offset
    [letter] = read_topic(kafka, f"{topic}.dlq", 1)
    assert letter.value == raw
    assert dict(letter.headers)["error_kind"] == b"undecodable_batch"


def test_casetrack_consume_skips_an_undecodable_batch_and_stops_on_sigterm(
    store: CaseStore, kafka: str, group: str, cli_env: dict[str, str]
) -> None:
    topic, _good, _batch, _at, ends = _undecodable_topic(kafka, "corrupt-gzip")
    args = ["consume", "--bootstrap-servers", kafka, "--topic", topic]
    args += ["--group", group, "--session-timeout-ms", "3000", "--max-poll-interval-ms", "6000"]
    with cli_process.running(args, cli_env) as proc:
        wait_until(
            lambda: store.stored_offsets(group, topic) == ends or proc.poll() is not None,
            30,
            "past the batch",
        )
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        stderr = cli_process.stop_with_sigterm(proc, within=10)
    assert b"undecodable record batch dead-lettered and skipped" in stderr


def test_casetrack_consume_stops_on_sigterm_while_the_broker_is_away(
    store: CaseStore, cli_env: dict[str, str]
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    args = ["consume", "--bootstrap-servers", nowhere, "--topic", unique("events")]
    with cli_process.running(args, cli_env) as proc:
        time.sleep(2)  # into the connect retries
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        cli_process.stop_with_sigterm(proc, within=10)


def test_casetrack_consume_refuses_to_start_without_a_codec_library(
    store: CaseStore, cli_env: dict[str, str]
) -> None:
    without_zstd = (
        "import sys; sys.modules['zstandard'] = None;"
        " from adapters.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", without_zstd, "consume", "--bootstrap-servers", "127.0.0.1:1"],
        env=cli_env,
        cwd=cli_process.ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "casetrack: compression libraries missing for zstd" in done.stderr.decode()
    assert b"consuming" not in done.stderr  # refused before it began

"""Record batches as producers compress them, and batches no codec can read."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import simulate
from kafka import KafkaProducer, TopicPartition
from kafka.net.compat import KafkaNetClient
from kafka.protocol.producer import ProduceRequest
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c

from adapters.postgres.event_store import CaseStore
from tests.integration.kafka_fixtures import (
    consuming,
    count,
    file_reference,
    kafka_broker,  # noqa: F401
    new_topic,
    project,
    read_topic,
    settings,
    snapshot,
    unique,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
CASETRACK = [sys.executable, "-m", "adapters.cli.main"]
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


# ------------------------------------------------------------ undecodable batches


def _gzip_batch(values: list[bytes]) -> bytearray:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=DefaultRecordBatchBuilder.CODEC_GZIP,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for delta, value in enumerate(values):
        builder.append(delta, timestamp=None, key=None, value=value, headers=[])
    batch = bytearray(builder.build())
    assert DefaultRecordBatch(bytes(batch)).compression_type == builder.CODEC_GZIP
    return batch


def _broken(values: list[bytes], how: str) -> bytes:
    """A batch as a faulty producer could send it; the embedded broker stores it as it is."""
    batch = _gzip_batch(values)
    header = DefaultRecordBatch.HEADER_STRUCT.size
    if how == "corrupt-gzip":  # compressed bytes damaged before the checksum was computed
        batch[header + (len(batch) - header) // 2] ^= 0x55
        struct.pack_into(">I", batch, CRC_AT, calc_crc32c(bytes(batch[CRC_AT + 4 :])))
    elif how == "lz4-flag":  # says lz4, holds gzip
        attributes = struct.unpack_from(">h", batch, CRC_AT + 4)[0]
        attributes = (attributes & ~0x07) | DefaultRecordBatchBuilder.CODEC_LZ4
        struct.pack_into(">h", batch, CRC_AT + 4, attributes)
        struct.pack_into(">I", batch, CRC_AT, calc_crc32c(bytes(batch[CRC_AT + 4 :])))
    else:  # "checksum": damaged after it
        batch[-3] ^= 0x55
    return bytes(batch)


CRC_AT = 17  # base offset (8), length (4), leader epoch (4), magic (1)


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


def _undecodable_topic(kafka: str, how: str) -> tuple[str, list[str], bytes, int, int]:
    """One partition: good messages, a broken batch of valid events, good messages.

    Returns the topic, the good lines, the broken batch, its offset and the log end.
    """
    topic = new_topic(kafka, partitions=1)
    good = simulate.feed(12, seed=23, duplicate_share=0.0, poison_share=0.0)
    hidden = simulate.feed(4, seed=24, duplicate_share=0.0, poison_share=0.0)  # other cases
    half = len(good) // 2
    at = simulate.publish(good[:half], kafka, topic)[0]
    batch = _broken([line.encode() for line in hidden], how)
    _produce_raw(kafka, topic, 0, batch)
    end = simulate.publish(good[half:], kafka, topic)[0]
    assert end == at + len(hidden) + len(good) - half
    return topic, good, batch, at, end


@pytest.mark.parametrize("how", ["corrupt-gzip", "lz4-flag", "checksum"])
def test_an_undecodable_batch_is_one_dead_letter_and_the_partition_flows_on(
    database_url: str, schema: str, store: CaseStore, kafka: str, how: str
) -> None:
    topic, good, batch, at, end = _undecodable_topic(kafka, how)
    group = unique("group")
    started = time.monotonic()
    with consuming(database_url, schema, settings(kafka, topic, group)) as running:
        wait_until(lambda: store.stored_offsets(group, topic) == {0: end}, 30, "past the batch")
        wait_until(lambda: count(store, "dead_letters", "published_at IS NULL") == 0, 10, "DLQ")
        assert time.monotonic() - started < 30
    assert running.stats.undecodable_batches == 1
    project(store)
    got, reference = snapshot(store), file_reference(database_url, good)
    assert got["events"] == reference["events"] and got["views"] == reference["views"]
    [(origin, offset, kind, _rule, _field, raw)] = got["dead"]
    assert (origin, offset, kind) == (f"kafka:{topic}:0", at, "undecodable_batch")
    assert raw[CRC_AT:] == batch[CRC_AT:]  # as produced; the broker set the base offset
    [letter] = read_topic(kafka, f"{topic}.dlq", 1)
    assert letter.value == raw
    assert dict(letter.headers)["error_kind"] == b"undecodable_batch"


def test_casetrack_consume_skips_an_undecodable_batch_and_stops_on_sigterm(
    store: CaseStore, kafka: str, cli_env: dict[str, str]
) -> None:
    topic, _good, _batch, _at, end = _undecodable_topic(kafka, "corrupt-gzip")
    group = unique("group")
    args = [*CASETRACK, "consume", "--bootstrap-servers", kafka, "--topic", topic]
    args += ["--group", group, "--session-timeout-ms", "3000", "--max-poll-interval-ms", "6000"]
    proc = subprocess.Popen(
        args,
        env=cli_env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            lambda: store.stored_offsets(group, topic) == {0: end} or proc.poll() is not None,
            30,
            "past the batch",
        )
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 0, stderr.decode()[-2000:]
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert b"undecodable record batch dead-lettered and skipped" in stderr

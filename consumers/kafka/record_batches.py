"""Record batches the consumer cannot decode: which one, and its bytes as stored.

A batch whose compressed bytes are corrupt, whose checksum fails or whose
codec is unknown makes kafka-python's ``poll`` raise the codec's error; asked
again, that KafkaConsumer loops for ever inside ``poll`` over the batch it
could not read (kafka-python 3.0), deaf to a stop request. So the consumer
never polls it again: it reads the batch at each held position straight from
the partition leader, undecoded, dead-letters the one that fails (its raw
bytes, first offset and reason), stores the offset after it, and connects anew.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kafka.codec
from kafka import TopicPartition
from kafka.errors import CorruptRecordError, KafkaError, KafkaTimeoutError, UnsupportedCodecError
from kafka.net.compat import KafkaNetClient
from kafka.protocol.consumer import FetchRequest
from kafka.record.memory_records import MemoryRecords

from consumers.contract import ContractError

# What kafka-python raises itself for such a batch; the codec libraries raise their own types.
DECODE_ERRORS: tuple[type[KafkaError], ...] = (CorruptRecordError, UnsupportedCodecError)
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
FETCH_WAIT_MS = 500
FETCH_MAX_BYTES = 1 << 20  # the broker sends a first batch whole even when it is larger


class UndecodableBatch(ContractError):
    """A record batch no codec can read: dead-lettered whole, as the broker stored it."""

    kind = "undecodable_batch"


class CodecsMissing(RuntimeError):
    """A codec library is not installed: its batches would all be dead letters."""


@dataclass(frozen=True)
class RawBatch:
    """The undecodable batch holding ``offset`` of ``partition``, as the broker sent it."""

    partition: TopicPartition
    offset: int  # the first offset not stored (the batch may begin before it)
    next_offset: int  # the first offset after the batch
    codec: str
    raw: bytes
    error: UndecodableBatch


def require_codecs() -> None:
    """Refuse to consume without every codec producers use (kafka-python's optional imports)."""
    have: dict[str, Callable[[], bool]] = {
        "snappy": kafka.codec.has_snappy,
        "lz4": kafka.codec.has_lz4,
        "zstd": kafka.codec.has_zstd,
    }
    missing = [name for name, present in have.items() if not present()]
    if missing:
        raise CodecsMissing(
            f"compression libraries missing for {', '.join(missing)}:"
            " reinstall casetrack (kafka-python[lz4,snappy,zstd])"
        )


def find_undecodable(
    bootstrap_servers: str,
    positions: Mapping[TopicPartition, int],
    timeout_ms: int,
    security: Mapping[str, Any] | None = None,
) -> RawBatch | None:
    """The first partition whose batch at its position does not decode, else None.
    ``security``: the clients' TLS and SASL settings (KafkaSecurity.client_config).

    Raises KafkaError when the broker cannot be asked.
    """
    client = KafkaNetClient(
        bootstrap_servers=bootstrap_servers,
        client_id="casetrack-batch-reader",
        request_timeout_ms=timeout_ms,
        **(security or {}),
    )
    try:
        client.check_version(timeout_ms=timeout_ms)
        for topic in sorted({tp.topic for tp in positions}):
            client.poll(timeout_ms=timeout_ms, future=client.cluster.add_topic(topic))
        for tp, offset in sorted(positions.items()):
            found = _undecodable_at(tp, offset, _fetch(client, tp, offset, timeout_ms))
            if found is not None:
                return found
        return None
    finally:
        client.close()


def _fetch(client: KafkaNetClient, tp: TopicPartition, offset: int, timeout_ms: int) -> bytes:
    leader = client.cluster.leader_for_partition(tp)
    if leader is None or leader == -1:
        raise KafkaTimeoutError(f"no leader known for partition {tp.partition}")
    partition = FetchRequest.FetchTopic.FetchPartition(
        partition=tp.partition,
        current_leader_epoch=-1,
        fetch_offset=offset,
        log_start_offset=-1,
        partition_max_bytes=FETCH_MAX_BYTES,
    )
    request = FetchRequest(
        replica_id=-1,
        max_wait_ms=FETCH_WAIT_MS,  # some brokers answer a fetch that may wait nothing
        min_bytes=1,  # with no records at all
        max_bytes=FETCH_MAX_BYTES,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,  # a one-off fetch, no session
        topics=[FetchRequest.FetchTopic(topic=tp.topic, partitions=[partition])],
        min_version=4,
        max_version=12,  # by topic name
    )
    response = client.send_and_receive(leader, request, timeout_ms=timeout_ms)
    for topic in response.responses:
        for data in topic.partitions:
            if data.partition_index == tp.partition:
                if data.error_code:
                    raise KafkaTimeoutError(f"fetch error code {data.error_code}")
                return bytes(data.records or b"")
    return b""


def _undecodable_at(tp: TopicPartition, offset: int, data: bytes) -> RawBatch | None:
    """The batch holding ``offset`` in ``data`` if it does not decode; None if it does.

    Only that batch: the consumer stops at the first batch it cannot read, so a
    later one failing here is for a later visit.
    """
    records = MemoryRecords(data)
    start = 0
    while records.has_next():
        try:
            batch = records.next_batch()
        except CorruptRecordError:
            return None  # a truncated tail: the batch holding the offset was not reached
        end = start + batch.size_in_bytes
        raw, start = data[start:end], end
        # Format v2 batches know their last offset; an old-format wrapper's offset is its last.
        next_offset = getattr(batch, "next_offset", batch.base_offset + 1)
        if next_offset <= offset:
            continue
        codec = CODECS.get(batch.compression_type, f"codec {batch.compression_type}")
        try:
            if not batch.validate_crc():
                raise CorruptRecordError("checksum mismatch")
            for _record in batch:
                pass
        except Exception as e:  # whatever the codec library raises
            # The error's type, never its text: that may quote the batch's bytes.
            reason = f"record batch ({codec}) could not be decoded: {type(e).__name__}"
            return RawBatch(tp, offset, next_offset, codec, raw, UndecodableBatch(reason))
        return None
    return None

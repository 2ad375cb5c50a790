"""``casetrack consume --status``: each partition's lag, from the broker and the store."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

from kafka import KafkaConsumer, TopicPartition

from consumers.kafka.log_identity import listed_topic_id, replaced
from consumers.kafka.settings import ConsumerSettings
from consumers.ports import LagStore


@dataclass(frozen=True)
class PartitionLag:
    """One partition as ``casetrack consume --status`` shows it."""

    partition: int
    log_start: int
    log_end: int
    stored: int | None  # next offset in PostgreSQL: the truth
    committed: int | None  # Kafka's committed offset: informational
    stored_topic_id: str | None = None  # the log the stored offset was read from
    log_replaced: bool = False  # the broker's topic id is another: the stored offset is stale

    @property
    def lag(self) -> int:
        """Messages not yet stored; negative when the stored offset is beyond the log end."""
        return self.log_end - (self.stored if self.stored is not None else self.log_start)


@dataclass(frozen=True)
class LagReport:
    topic: str
    group: str
    partitions: list[PartitionLag] = field(default_factory=list)
    unpublished_dead_letters: int = 0
    topic_id: str | None = None  # the broker's, None without topic ids

    @property
    def total(self) -> int:
        return sum(max(p.lag, 0) for p in self.partitions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "group": self.group,
            "topic_id": self.topic_id,
            "total_lag": self.total,
            "unpublished_dead_letters": self.unpublished_dead_letters,
            "partitions": [{**asdict(p), "lag": p.lag} for p in self.partitions],
        }


def lag_report(
    client: KafkaConsumer, store: LagStore, settings: ConsumerSettings, timeout: float = 5.0
) -> LagReport:
    """Per-partition lag in messages: log end minus the offset stored in PostgreSQL.

    ``client`` is a consumer of the group that never joins it (ConsumerSettings.
    status_config), so a running consumer is not disturbed; the caller closes it.
    The log end is the listed end offset, confirmed by the high watermark of a
    fetch from there: some brokers list the start of their last record batch.
    A stored offset read from another topic id than the broker's is flagged
    ``log_replaced``: the consumer re-reads that partition from its start when it
    next gets it (docs/kafka.md).
    """
    numbers = client.partitions_for_topic(settings.topic) or set()
    log_id = listed_topic_id(client, settings.topic)
    tps = [TopicPartition(settings.topic, n) for n in sorted(numbers)]
    if not tps:
        return LagReport(settings.topic, settings.group)
    starts = client.beginning_offsets(tps)
    listed = client.end_offsets(tps)
    ends = _confirmed_ends(client, listed, timeout)
    committed = {tp: client.committed(tp, timeout_ms=int(timeout * 1000)) for tp in tps}
    stored = store.stored_offsets(settings.group, settings.topic)
    stored_ids = store.stored_topic_ids(settings.group, settings.topic)
    return LagReport(
        settings.topic,
        settings.group,
        [
            PartitionLag(
                tp.partition,
                starts[tp],
                ends[tp],
                stored.get(tp.partition),
                committed[tp],
                _text(stored_ids.get(tp.partition)),
                tp.partition in stored and replaced(stored_ids.get(tp.partition), log_id),
            )
            for tp in tps
        ],
        store.unpublished_dead_letters(settings.topic),
        _text(log_id),
    )


def _text(topic_id: UUID | None) -> str | None:
    return None if topic_id is None else str(topic_id)


def _confirmed_ends(
    consumer: KafkaConsumer, listed: Mapping[TopicPartition, int], timeout: float
) -> dict[TopicPartition, int]:
    consumer.assign(list(listed))
    for tp, offset in listed.items():
        consumer.seek(tp, offset)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=100, max_records=1)
        if all(consumer.highwater(tp) is not None for tp in listed):
            break
    return {tp: max(end, consumer.highwater(tp) or 0) for tp, end in listed.items()}

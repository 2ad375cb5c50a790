"""Is the log behind a stored offset still the log it was read from?

A broker that comes back empty and is refilled past the stored offsets before the
consumer looks (or a topic deleted and created again) leaves offsets that look
valid but point into another log: reading on from there would skip the new log's
start and apply later events of a case before its earlier ones. Kafka names each
topic incarnation with a topic id (KIP-516, Metadata v10+: Kafka 2.8, Tansu), so
``consumer_offsets`` keeps the topic id beside each offset and the consumer
compares it with the broker's on assignment and before every batch.

A topic id is only trusted from metadata fetched after the client's last lost
connection: kafka-python asks for new metadata whenever a connection closes, so
records fetched from a restarted broker are never judged by the topic id of the
broker before it.
"""

from __future__ import annotations

from uuid import UUID

from kafka import KafkaConsumer


class MetadataPending(Exception):
    """The client lost a connection since its last metadata: its topic id may be stale."""


def broker_topic_id(consumer: KafkaConsumer, topic: str) -> UUID | None:
    """The topic's id in fresh metadata; None from a broker without topic ids."""
    # kafka-python has no public handle on its metadata (nor do its stubs): _cluster is it.
    if consumer._cluster.need_update:  # type: ignore[attr-defined]
        raise MetadataPending(topic)
    return listed_topic_id(consumer, topic)


def listed_topic_id(consumer: KafkaConsumer, topic: str) -> UUID | None:
    """The topic's id in the client's metadata as it stands: for a client that just read it."""
    found = consumer._cluster.topic_id(topic)  # type: ignore[attr-defined]  # as above
    return found if isinstance(found, UUID) and found.int != 0 else None  # zero: no id


def replaced(stored: UUID | None, current: UUID | None) -> bool:
    """True when both ids are known and differ: the stored offset belongs to a lost log."""
    return stored is not None and current is not None and stored != current

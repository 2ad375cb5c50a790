"""Builds the Kafka consumer and the lag report from a store and the consumer settings.

The composition of the Kafka channel: which broker clients, which batch writer,
which outbox the dead-letter publisher reads. The consumer itself builds none of
them (consumers/kafka/consumer.py).
"""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer

from adapters.postgres.event_store import CaseStore
from consumers.batch import BatchWriter
from consumers.kafka import lag
from consumers.kafka.consumer import KafkaCaseConsumer, KafkaClients
from consumers.kafka.dead_letter_publisher import DeadLetterPublisher
from consumers.kafka.record_batches import find_undecodable
from consumers.kafka.settings import BOOTSTRAP_TIMEOUT_MS, ConsumerSettings


def kafka_consumer(store: CaseStore, settings: ConsumerSettings) -> KafkaCaseConsumer:
    """A consumer of ``settings.topic`` writing into ``store``; ``run`` it to consume."""
    clients = KafkaClients(
        consumer=lambda: KafkaConsumer(**settings.consumer_config()),
        producer=lambda: KafkaProducer(**settings.producer_config()),
        publisher=lambda producer: DeadLetterPublisher(
            store.dead_letters, producer, settings.topic, settings.dead_letter_topic
        ),
        undecodable=lambda positions: find_undecodable(
            settings.bootstrap_servers, positions, BOOTSTRAP_TIMEOUT_MS
        ),
    )
    return KafkaCaseConsumer(store, settings, writer=BatchWriter(store), clients=clients)


def lag_report(store: CaseStore, settings: ConsumerSettings, timeout: float = 5.0) -> lag.LagReport:
    """The group's lag per partition (``casetrack consume --status``); joins no group."""
    client = KafkaConsumer(**settings.status_config(timeout))
    try:
        return lag.lag_report(client, store, settings, timeout)
    finally:
        client.close(autocommit=False)

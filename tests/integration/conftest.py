"""Kafka fixtures for the integration tests: a broker shared by the session (the embedded
one, or CASETRACK_TEST_KAFKA), and a topic and a consumer group of each test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.kafka_broker import EmbeddedBroker
from tests.integration.kafka_fixtures import EXTERNAL, new_topic, unique


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Bootstrap servers of a broker shared by the session."""
    if EXTERNAL:
        yield EXTERNAL
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def topic(kafka: str) -> str:
    """A topic of four partitions."""
    return new_topic(kafka)


@pytest.fixture
def group() -> str:
    return unique("group")

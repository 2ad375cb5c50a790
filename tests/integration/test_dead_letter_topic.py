"""The dead-letter topic on the real broker: a broker restart, a dead letter too large to send."""

from __future__ import annotations

import pytest
import simulate

from adapters.kafka_broker import EmbeddedBroker
from adapters.postgres.event_store import CaseStore
from tests.integration.kafka_fixtures import (
    EXTERNAL,
    consuming,
    count,
    kafka_broker,  # noqa: F401
    read_topic,
    settings,
    unique,
    wait_until,
)


def _poison(n: int, tag: str) -> list[str]:
    return [f"not json {tag} {i}" for i in range(n)]


def _ids(records: list[object]) -> list[int]:
    return [int(dict(r.headers)["dead_letter_id"]) for r in records]  # type: ignore[attr-defined]


def _dead_letter_ids(store: CaseStore, where: str) -> set[int]:
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(f"SELECT id FROM {store.schema}.dead_letters WHERE {where}")
        return {r["id"] for r in curs}


@pytest.mark.skipif(bool(EXTERNAL), reason="restarts the embedded broker")
def test_dead_letters_reach_the_topic_again_after_a_broker_restart(
    database_url: str, schema: str, store: CaseStore
) -> None:
    """The producer's idempotence state dies with the broker; the consumer goes on publishing."""
    topic, group = unique("events"), unique("group")
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        config = settings(bootstrap, topic, group)
        with consuming(database_url, schema, config) as running:
            # Enough before the restart that the new, shorter logs end below the stored
            # offsets: the consumer sees them as replaced and re-reads them (docs/kafka.md).
            valid = simulate.feed(60, seed=19, duplicate_share=0.0, poison_share=0.0)
            first = simulate.publish([*valid, *_poison(3, "before")], bootstrap, topic)
            wait_until(
                lambda: count(store, "dead_letters", "published_at IS NOT NULL") == 3, 30, "first"
            )
            before = _dead_letter_ids(store, "TRUE")

            broker.restart()
            second = simulate.publish(_poison(3, "after"), bootstrap, topic)
            assert all(second[p] < first[p] for p in second), "the new log must be shorter"
            wait_until(lambda: count(store, "dead_letters") == 6, 60, "the new dead letters")
            wait_until(
                lambda: count(store, "dead_letters", "published_at IS NULL") == 0,
                30,
                "the new dead letters on the topic, without a restart of the consumer",
            )
            records = read_topic(bootstrap, config.dead_letter_topic, 3)
        assert running.error is None
    after = _dead_letter_ids(store, "TRUE") - before
    assert set(_ids(records)) == after  # the restarted broker's topic holds the new ones

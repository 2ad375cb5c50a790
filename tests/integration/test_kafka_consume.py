"""Consuming case events from Kafka: end to end, poison, redelivery, retry, a shared group."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from adapters.cli.main import main as casetrack
from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from domain.application_number import case_id
from projections.case_status_table import read
from simulation import casegen, kafka_feed
from tests import cli_process
from tests.integration.kafka_fixtures import consuming, read_topic, settings, wait_until
from tests.integration.snapshots import file_reference, project, snapshot
from tests.stores import count, execute, rows
from tests.vault import vault_env


def test_simulated_feed_ends_in_the_status_views(
    database_url: str, store: CaseStore, kafka: str, topic: str, group: str, cli_env: dict[str, str]
) -> None:
    lines = kafka_feed.feed(120, seed=11, duplicate_share=0.02, poison_share=0.01)
    ends = kafka_feed.publish(lines, kafka, topic)

    with consuming(store, settings(kafka, topic, group)) as running:
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 60, "every message stored")
        wait_until(lambda: count(store, "dead_letters", "published_at IS NULL") == 0, 10, "DLQ")
    project(store)

    got = snapshot(store, origins=False)
    assert got == file_reference(database_url, lines)  # no loss, no duplicate, same views
    stats = running.stats
    assert stats.accepted == len(got["events"])
    assert stats.rejected == len(got["dead"]) >= len(kafka_feed.POISON_KINDS)
    assert stats.duplicates > 0

    received = [json.loads(line) for line in lines if '"type":"application.received"' in line]
    with store.datastore.transaction(commit=False) as curs:
        for event in received[:5]:
            view = read(curs, store.schema, event["application_number"])
            assert view is not None
    assert len(got["views"]) == len({e["application_number"] for e in received})

    assert len(read_topic(kafka, f"{topic}.dlq", stats.rejected)) == stats.rejected

    where = ["--bootstrap-servers", kafka, "--topic", topic, "--group", group]
    status = cli_process.run(["consume", *where, "--status", "--json"], cli_env)
    assert status.returncode == 0, status.stderr[-2000:]
    report = json.loads(status.stdout)
    assert report["total_lag"] == 0
    assert {p["partition"]: p["log_end"] for p in report["partitions"]} == {
        p: ends.get(p, 0) for p in range(len(report["partitions"]))
    }
    assert all(
        p["lag"] == 0 and p["stored"] == p["log_end"] for p in report["partitions"] if p["log_end"]
    )


def test_every_poison_kind_reaches_the_table_and_the_dlq_topic_and_the_partition_flows_on(
    store: CaseStore, kafka: str, topic: str, group: str
) -> None:
    good = casegen.generate(1, seed=5)[:3]  # received, acknowledged, and the next step
    number = json.loads(good[0])["application_number"]
    poisons = {
        kind: kafka_feed.poison(kind, seed=i, lines=good)
        for i, kind in enumerate(kafka_feed.POISON_KINDS)
    }
    sequence = [good[0], *poisons.values(), good[1], good[2]]
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    try:
        for line in sequence:  # one partition: the poison sits between good messages
            producer.send(topic, partition=0, key=kafka_feed.key_for(line), value=line.encode())
        producer.flush()
    finally:
        producer.close()

    with consuming(store, settings(kafka, topic, group)) as running:
        wait_until(lambda: store.stored_offsets(group, topic).get(0) == len(sequence), 60, "all")
        wait_until(lambda: running.stats.dead_letters_published == len(poisons), 10, "DLQ")

    assert len(store.stored_events(case_id(number))) == 3  # later good messages went in
    letters = rows(
        store,
        "SELECT id, position, topic, partition, key, raw, error_kind, rule, reason,"
        " published_at FROM {schema}.dead_letters ORDER BY position",
    )
    assert [r["position"] for r in letters] == list(range(1, 1 + len(poisons)))
    kinds = [r["error_kind"] for r in letters]
    assert kinds[0] == "invalid_json" and kinds[1] == "unknown_type"
    assert kinds[2:5] == ["invalid_field"] * 3
    assert [r["rule"] for r in letters[5:]] == ["not_acknowledged", "case_not_received"]
    for row, line in zip(letters, poisons.values(), strict=True):
        assert (row["topic"], row["partition"]) == (topic, 0)
        assert bytes(row["raw"]) == line.encode()
        key = kafka_feed.key_for(line)
        assert (bytes(row["key"]) if row["key"] is not None else None) == key
        assert row["reason"] and row["published_at"] is not None

    published = read_topic(kafka, f"{topic}.dlq", len(poisons))
    assert len(published) == len(poisons)
    by_offset = {int(dict(r.headers)["offset"]): r for r in published}
    for row in letters:
        record = by_offset[row["position"]]
        headers = {k: v.decode() for k, v in record.headers}
        assert record.value == bytes(row["raw"])
        assert record.key == (bytes(row["key"]) if row["key"] is not None else None)
        assert headers["topic"] == topic and headers["partition"] == "0"
        assert headers["reason"] == row["reason"]
        assert headers["error_kind"] == row["error_kind"]
        assert headers["dead_letter_id"] == str(row["id"])


def test_redelivery_is_a_no_op(store: CaseStore, kafka: str, topic: str, group: str) -> None:
    lines = kafka_feed.feed(60, seed=12, duplicate_share=0.03, poison_share=0.02)
    ends = kafka_feed.publish(lines, kafka, topic)
    config = settings(kafka, topic, group)
    with consuming(store, config) as first:
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 60, "first run")
        wait_until(lambda: count(store, "dead_letters", "published_at IS NULL") == 0, 10, "DLQ")
    project(store)
    before = snapshot(store)
    published_before = _published(store)

    # Kafka's committed offsets back to 0: positions come from PostgreSQL, nothing is re-read.
    tps = [TopicPartition(topic, p) for p in ends]
    _reset_kafka_offsets(kafka, group, tps)
    with consuming(store, config) as second:
        wait_until(lambda: second.consumer.positions == ends, 30, "positions from PostgreSQL")
        time.sleep(0.5)
    assert second.stats.batches == 0

    # And PostgreSQL's offsets gone too: everything comes again, and all of it is a no-op.
    execute(store, "DELETE FROM {schema}.consumer_offsets WHERE group_id = %s", (group,))
    with consuming(store, config) as third:
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 60, "re-read")
    assert third.stats.accepted == 0
    assert third.stats.duplicates == first.stats.accepted + first.stats.duplicates
    assert third.stats.rejected == first.stats.rejected
    assert third.stats.dead_letters_published == 0
    project(store)
    assert snapshot(store) == before
    assert _published(store) == published_before


def test_a_dead_letter_is_retried_after_the_fix(
    database_url: str,
    schema: str,
    store: CaseStore,
    kafka: str,
    topic: str,
    group: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    received, acknowledged = casegen.generate(1, seed=21)[:2]
    number = json.loads(received)["application_number"]
    with consuming(store, settings(kafka, topic, group)):
        # The acknowledgement overtakes the receipt: unknown case, dead-lettered.
        kafka_feed.publish([acknowledged, "not json at all"], kafka, topic)
        wait_until(lambda: count(store, "dead_letters") == 2, 60, "two dead letters")
        kafka_feed.publish([received], kafka, topic)
        wait_until(lambda: count(store, EVENTS_TABLE) == 1, 30, "the receipt")
    letters = rows(store, "SELECT id, error_kind FROM {schema}.dead_letters ORDER BY id")
    ids = {r["error_kind"]: r["id"] for r in letters}

    monkeypatch.setenv("CASETRACK_DATABASE_URL", database_url)
    for name, value in vault_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CASETRACK_SCHEMA", schema)
    monkeypatch.setenv("CASETRACK_LOG_LEVEL", "error")
    assert casetrack(["dead-letters", "retry", str(ids["rule_violation"])]) == 0
    assert "accepted" in capsys.readouterr().out
    assert len(store.stored_events(case_id(number))) == 2
    assert count(store, "dead_letters", "retried_at IS NOT NULL") == 1
    assert casetrack(["dead-letters", "retry", str(ids["rule_violation"])]) == 0
    assert "already stored" in capsys.readouterr().out
    assert casetrack(["dead-letters", "retry", str(ids["invalid_json"])]) == 1
    assert "rejected again: [invalid_json]" in capsys.readouterr().out
    assert len(store.stored_events(case_id(number))) == 2


def test_two_consumers_in_one_group_split_the_work_without_loss_or_duplicates(
    database_url: str, store: CaseStore, kafka: str, topic: str, group: str
) -> None:
    lines = kafka_feed.feed(100, seed=13, duplicate_share=0.02, poison_share=0.01)
    third = len(lines) // 3
    config = settings(kafka, topic, group)
    ends = kafka_feed.publish(lines[:third], kafka, topic)

    def publish_the_rest() -> None:  # while the group rebalances
        more = kafka_feed.publish(lines[third:], kafka, topic, rate=300)
        ends.update({p: max(n, ends.get(p, 0)) for p, n in more.items()})

    publisher = threading.Thread(target=publish_the_rest)
    with consuming(store, config) as first:
        wait_until(lambda: first.stats.batches > 0, 30, "the first member at work")
        with consuming(store, config) as second:
            wait_until(lambda: bool(second.consumer.positions), 30, "the second member placed")
            publisher.start()
            wait_until(lambda: second.stats.batches > 0, 30, "the second member at work")
        # The second left the group while messages kept coming: the first takes all back.
        publisher.join()
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 60, "all stored")
    project(store)

    assert first.stats.batches > 0 and second.stats.batches > 0
    got = snapshot(store, origins=False)
    assert got == file_reference(database_url, lines)
    assert first.stats.accepted + second.stats.accepted == len(got["events"])


def _published(store: CaseStore) -> list[tuple[object, ...]]:
    letters = rows(store, "SELECT id, published_at FROM {schema}.dead_letters ORDER BY id")
    return [tuple(r.values()) for r in letters]


def _reset_kafka_offsets(kafka: str, group: str, tps: list[TopicPartition]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        admin.alter_group_offsets(group, {tp: OffsetAndMetadata(0, "", -1) for tp in tps})
    finally:
        admin.close()
    check = KafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    try:
        assert all(check.committed(tp) in (0, None) for tp in tps)
    finally:
        check.close()

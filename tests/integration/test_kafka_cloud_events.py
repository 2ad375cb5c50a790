"""CloudEvents through the embedded broker: the CloudEvents SDK produces structured and
binary-mode records, the consumer stores what the v1 envelopes give, redelivery changes
nothing, and malformed CloudEvents are dead letters with their raw value and headers
(on the table and on the dead-letter topic), retried with them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from kafka import KafkaProducer

from adapters.cli.main import main as casetrack
from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from consumers.cloud_events import event_id_for
from consumers.dead_letter_retry import retry_dead_letter
from domain.application_number import case_id
from domain.commands import Outcome
from simulation import casegen
from tests.cloud_event_producer import binary, cloud_event, headers, key, structured
from tests.integration.kafka_fixtures import consuming, read_topic, settings, wait_until
from tests.integration.snapshots import file_reference, project, snapshot
from tests.stores import count, execute, rows
from tests.vault import vault_env

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]  # key, value, headers


def as_records(lines: Sequence[str]) -> list[Record]:
    """Each line in turn as a v1 envelope, a structured CloudEvent or a binary one; every
    fifth CloudEvent names its case by the record's key only (the SDK's key mapper)."""
    records: list[Record] = []
    for n, line in enumerate(lines):
        envelope = json.loads(line)
        number = envelope["application_number"].encode()
        if n % 3 == 0:
            records.append((number, line.encode(), []))
            continue
        if n % 5 == 0:
            event = cloud_event(envelope, subject=None, partitionkey=None)
            keyed = envelope["application_number"]
            mapper = lambda _event, keyed=keyed: keyed  # noqa: E731
        else:
            event, mapper = cloud_event(envelope, plain_type=n % 2 == 0), None
        message = structured(event, mapper) if n % 3 == 1 else binary(event, mapper)
        records.append((key(message), message.value, headers(message)))
    return records


def produce(kafka: str, topic: str, records: Sequence[Record], **where: Any) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    try:
        for k, value, hs in records:
            producer.send(topic, key=k, value=value, headers=hs, **where)
        producer.flush()
    finally:
        producer.close()


def test_cloud_events_in_both_modes_end_as_the_v1_envelopes_do_and_redelivery_is_a_no_op(
    database_url: str, store: CaseStore, kafka: str, topic: str, group: str
) -> None:
    lines = casegen.generate(8, seed=31)
    records = as_records(lines)
    produce(kafka, topic, records)
    config = settings(kafka, topic, group)
    with consuming(store, config) as first:
        wait_until(lambda: first.stats.accepted + first.stats.duplicates == len(lines), 60, "all")
    project(store)
    got = snapshot(store, origins=False)
    assert got == file_reference(database_url, lines)  # the same events, ids and views
    assert got["dead"] == [] and first.stats.accepted == len(got["events"])
    ends = store.stored_offsets(group, topic)

    execute(store, "DELETE FROM {schema}.consumer_offsets WHERE group_id = %s", (group,))
    with consuming(store, config) as again:
        wait_until(lambda: store.stored_offsets(group, topic) == ends, 60, "re-read")
    assert again.stats.accepted == 0 and again.stats.rejected == 0
    assert again.stats.duplicates == len(lines)
    project(store)
    assert snapshot(store, origins=False) == got


def test_malformed_cloud_events_are_dead_letters_with_their_raw_value_and_headers(
    database_url: str,
    store: CaseStore,
    kafka: str,
    topic: str,
    group: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    received, acknowledged = (json.loads(line) for line in casegen.generate(1, seed=32)[:2])
    number = received["application_number"]
    bad_time = binary(cloud_event(received))
    bad_time_headers = [(n, b"yesterday" if n == "ce_time" else v) for n, v in headers(bad_time)]
    unknown_type = structured(cloud_event(received, type="com.example.moved"))
    not_json = binary(cloud_event(received))
    early = binary(cloud_event(acknowledged))  # before its case: a rule, fixed by a retry
    sequence: list[Record] = [
        (key(bad_time), bad_time.value, bad_time_headers),
        (key(unknown_type), unknown_type.value, headers(unknown_type)),
        (key(not_json), b"{not json", headers(not_json)),
        (key(early), early.value, headers(early)),
    ]
    produce(kafka, topic, sequence, partition=0)
    with consuming(store, settings(kafka, topic, group)) as running:
        wait_until(lambda: store.stored_offsets(group, topic).get(0) == 4, 60, "all four")
        wait_until(lambda: running.stats.dead_letters_published == 4, 10, "DLQ")

    letters = rows(
        store,
        "SELECT id, position, raw, key, headers, error_kind, field, rule, reason"
        " FROM {schema}.dead_letters ORDER BY position",
    )
    assert [(r["error_kind"], r["field"], r["rule"]) for r in letters] == [
        ("invalid_field", "ce_time", None),
        ("unknown_type", "type", None),
        ("invalid_json", "data", None),
        ("rule_violation", None, "case_not_received"),
    ]
    assert letters[0]["reason"].startswith("ce_time: ") and "yesterday" not in letters[0]["reason"]
    published = {int(dict(r.headers)["offset"]): r for r in read_topic(kafka, f"{topic}.dlq", 4)}
    for row, (k, value, hs) in zip(letters, sequence, strict=True):
        assert bytes(row["raw"]) == value and bytes(row["key"]) == k
        record = published[row["position"]]
        assert (record.key, record.value) == (k, value)
        assert record.headers[: len(hs)] == hs  # the original headers first, as they came
        ours = dict(record.headers[len(hs) :])
        assert ours["error_kind"].decode() == row["error_kind"]

    produce(kafka, topic, [(number.encode(), json.dumps(received).encode(), [])])
    with consuming(store, settings(kafka, topic, group)):
        wait_until(lambda: count(store, EVENTS_TABLE) == 1, 30, "the receipt")
    retried = retry_dead_letter(store, store.dead_letters, letters[3]["id"])
    assert retried is not None and retried.outcome is Outcome.ACCEPTED  # with its ce_ headers
    events = store.stored_events(case_id(number))
    assert [str(e.event_id) for e in events] == [received["event_id"], acknowledged["event_id"]]

    # `dead-letters show` prints the headers as text; retention drops them with the value.
    for name, value in {**vault_env(), "CASETRACK_DATABASE_URL": database_url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CASETRACK_SCHEMA", store.schema)
    monkeypatch.setenv("CASETRACK_LOG_LEVEL", "error")
    capsys.readouterr()
    assert casetrack(["dead-letters", "show", str(letters[0]["id"])]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert ["ce_time", "yesterday"] in shown["headers"]
    assert store.dead_letters.drop_older_than(timedelta(0)) == 4
    assert count(store, "dead_letters", "headers IS NOT NULL OR raw <> ''") == 0


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_a_non_uuid_id_sent_twice_is_one_event(
    store: CaseStore, kafka: str, topic: str, group: str, mode: str
) -> None:
    received = json.loads(casegen.generate(1, seed=33)[0])
    event = cloud_event(received, id="gcms-received-1")
    message = structured(event) if mode == "structured" else binary(event)
    produce(kafka, topic, [(key(message), message.value, headers(message))] * 2, partition=0)
    with consuming(store, settings(kafka, topic, group)) as running:
        wait_until(lambda: store.stored_offsets(group, topic).get(0) == 2, 60, "both")
    assert (running.stats.accepted, running.stats.duplicates) == (1, 1)
    (stored,) = store.stored_events(case_id(received["application_number"]))
    assert stored.event_id == event_id_for(received["source"], "gcms-received-1")

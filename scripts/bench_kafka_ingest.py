"""Kafka ingestion end to end: consumed -> stored -> projected, against a naive consumer.

Publishes --events case events (about 13.8 per case, realistic flows from
casegen, 1% redeliveries) to a topic on the embedded broker (or
--bootstrap-servers), then starts --consumers `casetrack consume` processes in
one group and a `casetrack project` process on a fresh schema, and times until
every event is stored (offsets in PostgreSQL reach the log ends) and every
view has applied it.

Baseline, in the same run and on the same topic: a naive consumer in its own
group and schema that, per message, loads the case from the eventsourcing
repository, applies it, saves it (one transaction) and commits the offset to
Kafka, over the first --baseline-events messages. The last line is JSON:
events_per_s is end to end (start to every view projected, start-up
included), stored_events_per_s the storing throughput from the first stored
batch to the last (start-up excluded: the embedded broker holds a group join
for half the session timeout, 5 s here), stored_events_per_s_with_startup
from the start.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import subprocess
import sys
import time

import naive
import psycopg
from children import CASETRACK, ROOT, child_env
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from psycopg.sql import SQL, Identifier

from adapters import bootstrap, logs
from adapters.kafka_broker import EmbeddedBroker
from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from adapters.postgres.schema import drop_schema, init_schema
from adapters.settings import Settings
from consumers.kafka.security import KafkaSecurity
from projections.registry import select
from simulation import casegen, kafka_feed


class Progress:
    """Stored offsets, log head and the slowest view's position, in one query on one
    connection: the watcher shares the machine with what it measures, so it stays light."""

    def __init__(self, url: str, schema: str, group: str, topic: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.params = (group, topic, [p.name for p in select(None)])
        self.query = SQL(
            "SELECT (SELECT coalesce(json_object_agg(partition, next_offset), '{{}}')"
            "  FROM {s}.consumer_offsets WHERE group_id = %s AND topic = %s),"
            " (SELECT coalesce(max(notification_id), 0) FROM {s}.{events}),"
            " (SELECT CASE WHEN count(*) = cardinality(%s::text[]) THEN min(position) END"
            "  FROM {s}.projection_positions WHERE name = ANY(%s))"
        ).format(s=Identifier(schema), events=Identifier(EVENTS_TABLE))

    def read(self) -> tuple[dict[int, int], int, int]:
        group, topic, names = self.params
        row = self.conn.execute(self.query, (group, topic, names, names)).fetchone()
        assert row is not None
        offsets, head, projected = row
        return {int(p): int(n) for p, n in offsets.items()}, int(head), int(projected or -1)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def pipeline(
    url: str, servers: str, topic: str, ends: dict[int, int], consumers: int
) -> tuple[float, dict]:
    """Time `casetrack consume` (``consumers`` processes in one group) and `casetrack
    project` until everything is stored and projected."""
    schema = f"bench_{secrets.token_hex(4)}"
    init_schema(url, schema)
    env = child_env(url, schema)
    started = time.perf_counter()
    consume = [*CASETRACK, "consume", "--bootstrap-servers", servers, "--topic", topic]
    consume += ["--group", f"bench-{schema}", "--max-poll-records", "5000"]

    def quiet(command: list[str]) -> subprocess.Popen[bytes]:
        out = subprocess.DEVNULL
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)

    workers = [
        *(quiet(consume) for _ in range(consumers)),
        quiet([*CASETRACK, "project", "--poll-interval", "0.5"]),
    ]
    try:
        stored_at = first_at = None
        with Progress(url, schema, f"bench-{schema}", topic) as progress:
            while True:
                if any(w.poll() is not None for w in workers):
                    raise RuntimeError("a pipeline process exited early")
                offsets, head, projected = progress.read()
                if first_at is None and offsets:
                    first_at = time.perf_counter() - started
                if stored_at is None and all(offsets.get(p, 0) >= end for p, end in ends.items()):
                    stored_at = time.perf_counter() - started
                if stored_at is not None and projected >= head:
                    break
                time.sleep(0.2)
        elapsed = time.perf_counter() - started
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=30)
    store = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
    events = store.recorder.max_notification_id() or 0
    store.close()
    drop_schema(url, schema)
    return elapsed, {
        "stored_s": round(stored_at or 0, 1),
        "first_stored_s": round(first_at or 0, 1),
        "stored_events": events,
    }


def naive_consumer(
    url: str, servers: str, topic: str, limit: int, secured: KafkaSecurity | None = None
) -> tuple[int, float]:
    """One repository load, one save and one Kafka offset commit per message."""
    schema = f"bench_{secrets.token_hex(4)}"
    init_schema(url, schema)
    store = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
    app = store.app
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=servers,
        group_id=f"naive-{schema}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **(secured.client_config() if secured is not None else {}),
    )
    seen = 0
    started = time.perf_counter()
    try:
        while seen < limit:
            for tp, records in consumer.poll(timeout_ms=500, max_records=500).items():
                for record in records:
                    if seen >= limit:
                        break
                    seen += 1
                    naive.save_one(app, record.value)
                    consumer.commit(
                        {
                            TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(
                                record.offset + 1, "", -1
                            )
                        }
                    )
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
        store.close()
        drop_schema(url, schema)
    return seen, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--baseline-events", type=int, default=10_000)
    parser.add_argument("--consumers", type=int, default=2, help="processes in the group")
    parser.add_argument("--bootstrap-servers", help="a running broker (default: embedded)")
    args = parser.parse_args()
    logs.configure("error")
    url = bootstrap.database_url(Settings.from_env())
    broker = None if args.bootstrap_servers else EmbeddedBroker().start()
    servers = broker.bootstrap_servers if broker is not None else args.bootstrap_servers
    # A running broker may want TLS or SASL: the CASETRACK_KAFKA_* variables, which the
    # `casetrack consume` processes started below read too.
    secured = KafkaSecurity.from_env(Settings.from_env().kafka_env) if broker is None else None
    try:
        cases = max(round(args.events / 13.8), 1)
        lines = casegen.generate(cases, seed=1, duplicate_share=0.01)[: args.events]
        topic = f"bench-{secrets.token_hex(3)}"
        t0 = time.perf_counter()
        ends = kafka_feed.publish(lines, servers, topic, security=secured)
        print(
            f"published {len(lines):,} events of {cases:,} cases to {topic} in"
            f" {time.perf_counter() - t0:.1f}s ({len(ends)} partitions)"
        )

        elapsed, detail = pipeline(url, servers, topic, ends, args.consumers)
        rate = len(lines) / elapsed
        stored_rate = len(lines) / (detail["stored_s"] - detail["first_stored_s"])
        print(
            f"casetrack consume + project: {len(lines):,} events stored in"
            f" {detail['stored_s']}s and projected (every view) in {elapsed:.1f}s"
            f" = {rate:,.0f} events/s end to end; stored rate"
            f" {len(lines) / detail['stored_s']:,.0f} events/s with start-up (processes"
            f" start, the broker's group join); the first batch was stored at"
            f" {detail['first_stored_s']}s, so {stored_rate:,.0f} events/s once consuming"
        )

        seen, base_elapsed = naive_consumer(
            url, servers, topic, min(args.baseline_events, len(lines)), secured
        )
        base_rate = seen / base_elapsed
        print(
            f"baseline (naive: one save and one offset commit per message): {seen:,} events"
            f" in {base_elapsed:.1f}s = {base_rate:,.0f} events/s"
        )
        ratio = rate / base_rate
        print(f"ratio: {ratio:.1f}x")
    finally:
        if broker is not None:
            broker.stop()
    naive.report(
        len(lines),
        rate,
        base_rate,
        stored_events_per_s=stored_rate,
        stored_events_per_s_with_startup=len(lines) / detail["stored_s"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Kafka for the tests: the embedded broker (or CASETRACK_TEST_KAFKA), and helpers.

Import the fixture into a test module with
``from tests.integration.kafka_fixtures import kafka  # noqa: F401``
(or import ``kafka_broker``, the same fixture, where ruff would see the
``kafka`` parameter as a redefinition).
Consumer timeouts are low: with the embedded broker a group join waits out
the rebalance timeout (max_poll_interval_ms).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from psycopg.sql import SQL, Identifier

from adapters.bootstrap import kafka_consumer
from adapters.kafka_broker import EmbeddedBroker, free_port
from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from adapters.postgres.schema import drop_schema, init_schema
from consumers.kafka.settings import ConsumerSettings
from consumers.kafka.stats import ConsumeStats

EXTERNAL = os.environ.get("CASETRACK_TEST_KAFKA", "").strip()

FAST = {
    "session_timeout_ms": 3000,
    "heartbeat_interval_ms": 500,
    "max_poll_interval_ms": 6000,
    "fetch_max_wait_ms": 100,
    "poll_timeout_ms": 200,
    "backoff_initial": 0.3,
    "backoff_max": 2.0,
}


@pytest.fixture(scope="session", name="kafka")
def kafka_broker() -> Iterator[str]:
    """Bootstrap servers of a broker shared by the session."""
    if EXTERNAL:
        yield EXTERNAL
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


kafka = kafka_broker


def stop_with_sigterm(proc: subprocess.Popen[bytes], within: float = 30.0) -> bytes:
    """SIGTERM ``proc`` and check it exits 0 within ``within`` seconds; its stderr."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=within + 5)
    assert proc.returncode == 0, (stderr or b"").decode()[-2000:]
    assert time.monotonic() - started < within, "SIGTERM honoured too late"
    return stderr or b""


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_topic(bootstrap: str, partitions: int = 4) -> str:
    """A topic of its own for a test, created with ``partitions`` whatever the broker's default."""
    name = unique("events")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def settings(bootstrap: str, topic: str, group: str, **overrides: Any) -> ConsumerSettings:
    return ConsumerSettings(bootstrap, topic=topic, group=group, **{**FAST, **overrides})


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class RunningConsumer:
    """A KafkaCaseConsumer on a thread of its own, with a store of its own."""

    def __init__(self, store: Any, settings: ConsumerSettings) -> None:
        self.store = store
        self.consumer = kafka_consumer(store, settings)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def stats(self) -> ConsumeStats:
        return self.consumer.stats

    def _run(self) -> None:
        try:
            self.consumer.run(self.stop_event)
        except BaseException as e:
            self.error = e
            raise

    def start(self) -> RunningConsumer:
        self.thread.start()
        return self

    def stop(self, timeout: float = 30) -> ConsumeStats:
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "consumer did not stop"
        if self.error is not None:
            raise self.error
        return self.stats


@contextmanager
def consuming(
    database_url: str, schema: str, settings: ConsumerSettings
) -> Iterator[RunningConsumer]:
    store = CaseStore(database_url, schema)
    running = RunningConsumer(store, settings).start()
    try:
        yield running
    finally:
        try:
            running.stop()
        finally:
            store.close()


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 20) -> list[Any]:
    """The first ``count`` records of every partition of ``topic``, read without a group."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100)
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions:
            partitions = consumer.partitions_for_topic(topic)
            assert time.monotonic() < deadline, f"topic {topic} never appeared"
            if not partitions:
                time.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        while len(records) < count:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            assert time.monotonic() < deadline, f"{len(records)} of {count} records on {topic}"
        time.sleep(0.3)  # anything beyond ``count`` would show up now
        for batch in consumer.poll(timeout_ms=300).values():
            records.extend(batch)
    finally:
        consumer.close()
    return records


def count(store: CaseStore, table: str, where: str = "TRUE") -> int:
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(
            SQL("SELECT count(*) AS n FROM {}.{} WHERE " + where).format(
                Identifier(store.schema), Identifier(table)
            )
        )
        row = curs.fetchone()
    assert row is not None
    return int(row["n"])


def snapshot(store: CaseStore, *, origins: bool = True) -> dict[str, Any]:
    """What two runs over the same messages must agree on (no timestamps).

    Without ``origins``, dead letters are compared by kind only, so a file
    ingest can serve as the reference of a Kafka run.
    """
    schema = Identifier(store.schema)
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(
            SQL(
                "SELECT originator_id, originator_version, topic FROM {}.{}"
                " ORDER BY originator_id, originator_version"
            ).format(schema, Identifier(EVENTS_TABLE))
        )
        events = [tuple(r.values()) for r in curs.fetchall()]
        columns = ["error_kind", "rule", "field", "raw"]
        if origins:
            columns[:0] = ["origin", "position"]
        order = ", ".join(str(n) for n in range(1, len(columns) + 1))
        curs.execute(
            SQL("SELECT " + ", ".join(columns) + " FROM {}.dead_letters ORDER BY " + order).format(
                schema
            )
        )
        dead = [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in r.values()) for r in curs
        ]
        curs.execute(
            SQL("SELECT application_number, view FROM {}.case_status ORDER BY 1").format(schema)
        )
        views = [
            (
                r["application_number"],
                {k: v for k, v in r["view"].items() if not k.endswith("last_updated")},
            )
            for r in curs.fetchall()
        ]
    case_ids = sorted({case_id for case_id, *_ in events})
    event_ids = {
        str(case_id): [str(e.event_id) for e in store.stored_events(case_id)]
        for case_id in case_ids
    }
    return {"events": events, "event_ids": event_ids, "dead": dead, "views": views}


def project(store: CaseStore) -> None:
    from projections.case_status_table import CaseStatusProjection
    from projections.projector import Projector

    Projector(store, CaseStatusProjection()).catch_up()


@contextmanager
def scratch_store(database_url: str) -> Iterator[CaseStore]:
    """A store in a schema of its own, dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    init_schema(database_url, name)
    store = CaseStore(database_url, name)
    try:
        yield store
    finally:
        store.close()
        drop_schema(database_url, name)


def file_reference(database_url: str, lines: Sequence[str]) -> dict[str, Any]:
    """The snapshot a file ingest of ``lines`` gives: what consuming them must give too."""
    from consumers.file_ingest import ingest_lines

    with scratch_store(database_url) as store:
        ingest_lines((line.encode() + b"\n" for line in lines), "file:reference", store)
        project(store)
        return snapshot(store, origins=False)


class TcpProxy:
    """A loopback TCP forwarder that a test cuts (every connection dropped, new ones
    refused) and restores: a database outage without touching the database.

    The target is a TCP port, or PostgreSQL's Unix socket when ``target_host`` is a
    directory (as the embedded server gives). The backend process ids are read from
    the server's BackendKeyData message as it passes, so ``terminate_backends``
    kills the sessions behind this proxy and only those.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._backends: set[int] = set()
        self._lock = threading.Lock()

    def _connect_upstream(self) -> socket.socket:
        host, port = self.target
        if not host.startswith("/"):
            return socket.create_connection(self.target)
        upstream = socket.socket(socket.AF_UNIX)
        try:
            upstream.connect(f"{host}/.s.PGSQL.{port}")
        except OSError:
            upstream.close()
            raise
        return upstream

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            doomed, self._sockets = self._sockets, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()
        for s in doomed:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    restore = start
    close = cut

    def terminate_backends(self, database_url: str) -> int:
        """pg_terminate_backend on the server sessions behind this proxy, and only those."""
        with self._lock:
            pids, self._backends = list(self._backends), set()
        with psycopg.connect(database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)",
                (pids,),
            ).fetchall()
        return len(rows)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets |= {client, upstream}
            for a, b, server in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(a, b, server), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        seen: bytes | None = b""  # the server's first bytes, until its BackendKeyData went by
        try:
            while data := source.recv(65536):
                if from_server and seen is not None:
                    seen += data
                    at = seen.find(b"K\x00\x00\x00\x0c")  # type K, length 12: pid, secret
                    if at >= 0 and len(seen) >= at + 9:
                        with self._lock:
                            self._backends.add(int.from_bytes(seen[at + 5 : at + 9], "big"))
                        seen = None
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._sockets -= {source, sink}

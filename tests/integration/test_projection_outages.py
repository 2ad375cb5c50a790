"""`casetrack project` through database outages: start-up, mid-page, live LISTEN.

The database goes away for real: the daemon talks to PostgreSQL through a TCP
proxy that the test cuts (every connection dropped, new ones refused) and
restores. A projection that logs every position it applies, in its own
transaction, shows that nothing is applied twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence

import pytest
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from adapters.postgres.event_store import CaseStore
from consumers.file_ingest import ingest_lines
from projections import daemon
from projections.case_status_table import CaseStatusProjection
from projections.event_log import Positioned
from projections.projector import Projector
from simulation import casegen
from tests import cli_process
from tests.integration.kafka_fixtures import wait_until
from tests.integration.snapshots import folded_views, views
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_ingest import _lines
from tests.stores import execute, rows
from tests.vault import TEST_VAULT


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    running = TcpProxy(database_url).start()
    yield running
    running.close()


class LoggedAndGated(CaseStatusProjection):
    """case_status that also logs each position it applies (rolled back with the page),
    and holds its first page past ``gate_at`` until the test says go."""

    def __init__(self, schema: str, gate_at: int) -> None:
        self.log = SQL("INSERT INTO {}.applied_log (position) VALUES (%s)").format(
            Identifier(schema)
        )
        self.gate_at = gate_at
        self.reached = threading.Event()
        self.go = threading.Event()

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        super().apply(curs, tables, page)
        curs.executemany(self.log, [(p.position,) for p in page])
        if not self.reached.is_set() and page[-1].position >= self.gate_at:
            self.reached.set()
            assert self.go.wait(30), "the test never let the page go on"


def _head(store: CaseStore) -> int:
    return store.recorder.max_notification_id() or 0


def _applied(store: CaseStore) -> list[int]:
    applied = rows(store, "SELECT position FROM {schema}.applied_log ORDER BY position")
    return [r["position"] for r in applied]


def test_daemon_survives_an_outage_mid_page_and_while_listening(
    database_url: str, schema: str, store: CaseStore, proxy: TcpProxy
) -> None:
    execute(store, "CREATE TABLE {schema}.applied_log (position bigint NOT NULL)")
    ingest_lines(_lines(casegen.generate(40, seed=60)), "a", store)
    head = _head(store)
    projection = LoggedAndGated(schema, gate_at=head // 2)
    reader = CaseStore(proxy.url, schema, TEST_VAULT)
    reader.datastore.pool.timeout = 1.0  # fail fast while the database is away
    stop = threading.Event()
    died: list[BaseException] = []

    def run() -> None:
        try:
            daemon.run(reader, [projection], stop, poll_interval=0.3, page_size=25)
        except BaseException as e:
            died.append(e)
            raise

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    position = Projector(store, projection).position
    try:
        # Catch-up: the connection goes while a page is being applied.
        assert projection.reached.wait(30), "catch-up never reached the gate"
        proxy.cut()
        projection.go.set()
        stop.wait(1.0)  # failed attempts, backing off
        assert runner.is_alive(), f"the daemon died: {died!r}"
        assert 0 < position() < head
        proxy.restore()
        wait_until(lambda: position() == head, 30, "catch-up after the outage")

        # Live: waiting on LISTEN when the database goes; new events meanwhile.
        proxy.cut()
        ingest_lines(_lines(casegen.generate(10, seed=61)), "b", store)
        stop.wait(1.0)
        assert runner.is_alive(), f"the daemon died: {died!r}"
        proxy.restore()
        wait_until(lambda: position() == _head(store), 30, "the events of the outage")

        # Sessions killed under it between pages: the next page finds new ones.
        proxy.terminate_backends()
        ingest_lines(_lines(casegen.generate(10, seed=62)), "c", store)
        wait_until(lambda: position() == _head(store), 30, "the events after the kill")
    finally:
        stop.set()
        runner.join(30)
        reader.close()
    assert not died
    assert _applied(store) == list(range(1, _head(store) + 1))  # each once, none skipped
    assert views(store) == folded_views(store)


def test_project_command_waits_for_the_database_at_start_up(
    database_url: str, schema: str, store: CaseStore, proxy: TcpProxy, cli_env: dict[str, str]
) -> None:
    ingest_lines(_lines(casegen.generate(10, seed=63)), "a", store)
    proxy.cut()
    env = {**cli_env, "CASETRACK_DATABASE_URL": proxy.url}
    with cli_process.running(["project", "--poll-interval", "0.5"], env) as proc:
        time.sleep(11.0)  # longer than a connection is waited for (10 s)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        proxy.restore()
        wait_until(
            lambda: Projector(store, CaseStatusProjection()).position() == _head(store),
            40,
            "the projection after start-up",
        )
        cli_process.stop_with_sigterm(proc)
    assert views(store) == folded_views(store)

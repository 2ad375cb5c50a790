"""Several `casetrack project` processes side by side (projections/leases.py): they share
the projections and the chores, one killed with -9 hands its share to the other within
seconds, one stopped with SIGTERM exits 0 with its leases released, and while a writer
appends throughout, nothing is applied twice or lost: the views equal a replay of the
log from scratch and the counters of processing_stats are exact. In-process daemons show
what a lost lease connection and a process cut off from the database do."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from adapters.bootstrap import lease_holders
from adapters.cli.main import main
from adapters.postgres.event_store import CaseStore
from adapters.postgres.leases import APPLICATION, PgLeases, holder_name
from consumers.file_ingest import ingest_lines
from projections import daemon, rebuild
from projections.leases import CHORES, fair_share
from projections.projector import Projector
from projections.registry import all_projections
from simulation import casegen
from tests import cli_process
from tests.integration.kafka_fixtures import wait_until
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_ingest import _lines
from tests.stores import rows
from tests.vault import TEST_VAULT

PROJECTIONS = list(all_projections().values())
LEASES = [*(p.name for p in PROJECTIONS), CHORES]
PROJECT = ["project", "--poll-interval", "0.5"]


def _holders(store: CaseStore) -> dict[str, str]:
    return lease_holders(store, LEASES)


def _me(proc: subprocess.Popen[bytes]) -> str:
    return f"{socket.gethostname()[:40]}:{proc.pid}"


def _shared_by(store: CaseStore, *procs: subprocess.Popen[bytes]) -> bool:
    """Every lease held, each process holding some, none more than its fair share."""
    holders = _holders(store)
    held = [sum(1 for h in holders.values() if h == _me(p)) for p in procs]
    share = fair_share(len(LEASES), len(procs))
    return len(holders) == len(LEASES) and all(0 < n <= share for n in held)


def _head(store: CaseStore) -> int:
    return store.recorder.max_notification_id() or 0


def _caught_up(store: CaseStore) -> bool:
    head = _head(store)
    return all(Projector(store, p).position() == head for p in PROJECTIONS)


@contextmanager
def _writer(store: CaseStore, lines: list[str]) -> Iterator[threading.Event]:
    """Appends ``lines`` ten at a time until they run out or the event it yields is set."""
    stop = threading.Event()
    failed: list[BaseException] = []

    def write() -> None:
        try:
            for start in range(0, len(lines), 10):
                if stop.is_set():
                    return
                ingest_lines(_lines(lines[start : start + 10]), "writer", store)
                time.sleep(0.02)
            failed.append(AssertionError("the writer ran out of events before the end"))
        except BaseException as e:
            failed.append(e)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(60)
    assert not failed, failed


def _status(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any, *args: str
) -> str:
    """`casetrack projections status`'s output (in this process: no start-up to wait for)."""
    for name, value in cli_env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["projections", "status", *args]) == 0
    return str(capsys.readouterr().out)


def test_projectors_share_the_work_take_over_from_a_killed_one_and_stop_on_sigterm(
    cli_env: dict[str, str], store: CaseStore, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Two processes share the leases; the first is killed with -9 and the second takes
    all of them over; the second is stopped with SIGTERM while events still arrive (exit
    0 within 10 s, its leases released); what it left is applied here. A writer appends
    throughout: nothing applied twice or lost."""
    ingest_lines(_lines(casegen.generate(40, seed=70)), "before", store)
    with ExitStack() as stack:
        first = stack.enter_context(cli_process.running(PROJECT, cli_env))
        second = stack.enter_context(cli_process.running(PROJECT, cli_env))
        with _writer(store, casegen.generate(400, seed=71)) as enough:
            wait_until(lambda: _shared_by(store, first, second), 30, "the leases shared")
            status = _status(cli_env, monkeypatch, capsys)
            assert _me(first) in status and _me(second) in status
            shown = json.loads(_status(cli_env, monkeypatch, capsys, "--json"))
            assert {s["holder"] for s in shown} <= {_me(first), _me(second)}

            first.kill()  # SIGKILL: its connections close, the server frees its leases
            wait_until(lambda: _holders(store) == _all(second), 15, "the takeover")
            more = _head(store) + 200
            wait_until(lambda: _head(store) >= more, 30, "events written after the takeover")

            cli_process.stop_with_sigterm(second, within=10)  # the page in hand, then exit 0
            assert _holders(store) == {}, "leases kept after exit"
            enough.set()
    for projection in PROJECTIONS:  # what was written after the second stopped
        Projector(store, projection).catch_up()

    report = rebuild.verify(store, PROJECTIONS)
    assert report.ok, report.differences
    [counted] = rows(
        store,
        "SELECT sum(received) AS received, sum(open) AS open, sum(decided) AS decided,"
        " sum(withdrawn) AS withdrawn FROM {schema}.stats_monthly",
    )
    [cases] = rows(
        store,
        "SELECT count(*) AS n, count(*) FILTER (WHERE closed) AS closed FROM {schema}.stats_cases",
    )
    [received] = rows(  # a case's first event is its Received
        store, "SELECT count(*) AS n FROM {schema}.{events} WHERE originator_version = 1"
    )
    assert counted["received"] == cases["n"] == received["n"] > 40
    assert counted["decided"] + counted["withdrawn"] == cases["closed"] > 0
    assert counted["open"] + cases["closed"] == counted["received"]


def _all(proc: subprocess.Popen[bytes]) -> dict[str, str]:
    return dict.fromkeys(LEASES, _me(proc))


def test_a_projector_whose_lease_connection_is_cut_drops_its_leases_and_takes_them_back(
    database_url: str, schema: str, store: CaseStore
) -> None:
    """The lease connection's backend terminated under a running daemon (in this process):
    it notices at its next renewal, rejoins, holds every lease again and goes on."""
    ingest_lines(_lines(casegen.generate(20, seed=73)), "a", store)
    names = [p.name for p in PROJECTIONS]
    me = holder_name()
    stop = threading.Event()
    died: list[BaseException] = []

    def run() -> None:
        try:
            daemon.run(
                store, PROJECTIONS, stop, poll_interval=0.3, leases=PgLeases(database_url, schema)
            )
        except BaseException as e:
            died.append(e)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        wait_until(lambda: lease_holders(store, names) == dict.fromkeys(names, me), 15, "leases")
        [cut] = rows(
            store,
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity"
            " WHERE application_name = %s",
            [f"{APPLICATION} {me}"],
        )
        assert cut["done"]
        wait_until(lambda: lease_holders(store, names) == {}, 15, "the leases gone with it")
        ingest_lines(_lines(casegen.generate(10, seed=74)), "b", store)
        wait_until(
            lambda: lease_holders(store, names) == dict.fromkeys(names, me), 15, "leases again"
        )
        wait_until(lambda: _caught_up(store), 30, "the events written meanwhile")
    finally:
        stop.set()
        runner.join(30)
    assert not died, died
    assert lease_holders(store, names) == {}, "leases kept after the daemon returned"
    assert rebuild.verify(store, PROJECTIONS).ok


def test_a_projector_that_cannot_reach_the_database_hands_its_leases_to_one_that_can(
    database_url: str, schema: str, store: CaseStore
) -> None:
    """Two daemons (in this process); one reaches the database through a proxy that the
    test cuts, its lease connection untouched (as when the server refuses it new
    connections): once its outage has lasted ``HAND_OVER_AFTER`` it gives its leases up,
    and the other takes them over and applies what is written meanwhile."""
    ingest_lines(_lines(casegen.generate(20, seed=75)), "a", store)
    names = [p.name for p in PROJECTIONS]
    proxy = TcpProxy(database_url).start()
    cut_off = CaseStore(proxy.url, schema, TEST_VAULT)
    cut_off.datastore.pool.timeout = 1.0  # fail fast while the database is away
    stop = threading.Event()
    died: list[BaseException] = []

    def run(on: CaseStore, holder: str) -> None:
        try:
            leases = PgLeases(database_url, schema, holder)
            daemon.run(on, PROJECTIONS, stop, poll_interval=0.3, leases=leases)
        except BaseException as e:
            died.append(e)

    def holders() -> set[str]:
        held = lease_holders(store, names)
        return set(held.values()) if len(held) == len(names) else set()

    runners = [
        threading.Thread(target=run, args=(cut_off, "cut-off:1"), daemon=True),
        threading.Thread(target=run, args=(store, "direct:2"), daemon=True),
    ]
    for runner in runners:
        runner.start()
    try:
        wait_until(lambda: holders() == {"cut-off:1", "direct:2"}, 15, "the leases shared")
        proxy.cut()
        wait_until(lambda: holders() == {"direct:2"}, 15, "the takeover")
        ingest_lines(_lines(casegen.generate(10, seed=76)), "b", store)
        wait_until(lambda: _caught_up(store), 30, "the events written meanwhile")
    finally:
        stop.set()
        for runner in runners:
            runner.join(30)
        cut_off.close()
        proxy.close()
    assert not died, died
    assert rebuild.verify(store, PROJECTIONS).ok

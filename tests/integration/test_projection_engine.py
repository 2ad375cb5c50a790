"""The projections engine on real PostgreSQL: failures, live mode, concurrency, rebuilds."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, LiteralString

import pytest
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed

from adapters.postgres.event_store import CaseStore
from consumers.file_ingest import ingest_lines
from domain import catalogue as t
from domain.case import Case
from projections import daemon, rebuild
from projections.case_status_table import CaseStatusProjection, CaseStatusReplayer
from projections.event_log import Positioned
from projections.projector import PageCache, Projector, resume
from projections.registry import all_projections
from projections.status import statuses
from projections.tables import Row
from simulation import casegen
from tests.integration.snapshots import folded_views, views
from tests.integration.stored_events import store_nul_in_a_text_column, store_undecodable
from tests.integration.test_ingest import _lines
from tests.stores import execute, rows
from tests.vault import TEST_VAULT, open_test_store


def _rows(store: CaseStore) -> dict[Any, Any]:
    stored = rows(store, "SELECT case_id, view, version, position FROM {schema}.case_status")
    return {r["case_id"]: (r["view"], r["version"], r["position"]) for r in stored}


QUOTED = "handler bug on Lambert, born 1990-06-01"  # what a handler's message may quote


class FailingReplayer(CaseStatusReplayer):
    def __init__(self, event_type: str) -> None:
        self.event_type = event_type

    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        if any(p.event.event_type == self.event_type for p in events):
            raise ValueError(QUOTED)
        return super().case(events)


class FailingOn(CaseStatusProjection):
    """case_status whose handler and replayer raise on one kind of event."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        if any(p.event.event_type == self.event_type for p in page):
            raise ValueError(QUOTED)
        super().apply(curs, tables, page)

    def replayer(self) -> CaseStatusReplayer:
        return FailingReplayer(self.event_type)


def _dead_letters(store: CaseStore) -> list[tuple[str, int, str, str]]:
    letters = rows(
        store,
        "SELECT projection, position, event_type, error FROM {schema}.projection_dead_letters"
        " ORDER BY projection, position",
    )
    return [(d["projection"], d["position"], d["event_type"], d["error"]) for d in letters]


def test_a_failing_handler_dead_letters_each_failing_event_and_goes_on(store: CaseStore) -> None:
    ingest_lines(_lines(casegen.generate(30, seed=2)), "f", store)
    failing = FailingOn("medical.passed")
    Projector(store, failing, page_size=50).catch_up()

    dead = _dead_letters(store)
    assert len(dead) > 1
    assert all(d[0] == "case_status" and d[2] == "medical.passed" for d in dead)
    # The kind of error and where it arose, never its message: it may quote the data.
    assert all(d[3] == "ValueError in FailingOn.apply (test_projection_engine.py)" for d in dead)
    (status,) = statuses(store, [failing])
    assert status.last_error == dead[-1][3]
    assert status.halted_at is None and status.lag_events == 0
    assert status.dead_letters == len(dead)
    # A rebuild skips the same events: the same rows, the same dead letters.
    live = _rows(store)
    rebuild.rebuild(store, [failing])
    assert _rows(store) == live
    assert [d[:3] for d in _dead_letters(store)] == [d[:3] for d in dead]
    assert "Lambert" not in str(_dead_letters(store))


def test_an_infrastructure_fault_halts_without_dead_letters_and_resume_carries_on(
    store: CaseStore,
) -> None:
    ingest_lines(_lines(casegen.generate(5, seed=3)), "f", store)
    table = CaseStatusProjection.tables[0]
    with store.datastore.transaction(commit=True) as curs:
        curs.execute(SQL("DROP TABLE {}").format(table.ident(store.schema)))

    assert Projector(store, CaseStatusProjection()).catch_up() == 0

    (status,) = statuses(store, [CaseStatusProjection()])
    assert (status.halted_at, status.position, status.dead_letters) == (1, 0, 0)
    assert status.last_error and "UndefinedTable" in status.last_error
    with store.datastore.transaction(commit=True) as curs:
        for statement in table.create(store.schema):
            curs.execute(statement)
    resume(store, "case_status")
    Projector(store, CaseStatusProjection()).catch_up()
    assert views(store) == folded_views(store)


def test_no_event_is_missed_while_writers_append(database_url: str, schema: str) -> None:
    writers = [CaseStore(database_url, schema, TEST_VAULT) for _ in range(3)]
    reader = CaseStore(database_url, schema, TEST_VAULT)
    stop = threading.Event()
    runner = threading.Thread(
        target=daemon.run,
        args=(reader, [CaseStatusProjection()], stop),
        kwargs={"poll_interval": 0.2, "page_size": 37},
    )
    runner.start()
    try:
        # Three writers on disjoint cases (different seeds give different numbers).
        threads = [
            threading.Thread(
                target=ingest_lines,
                args=(_lines(casegen.generate(60, seed=100 + i)), f"w{i}", w),
                kwargs={"batch_size": 11},
            )
            for i, w in enumerate(writers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        head = reader.recorder.max_notification_id()
        deadline = time.monotonic() + 30
        while Projector(reader, CaseStatusProjection()).position() < (head or 0):
            assert time.monotonic() < deadline, "projector did not catch up"
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join()
    assert views(reader) == folded_views(reader)
    for store in (*writers, reader):
        store.close()


def test_live_mode_wakes_on_notify_and_polls_when_notifications_are_lost(
    store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def project_until_seen(lines: list[bytes], poll_interval: float) -> None:
        stop = threading.Event()
        runner = threading.Thread(
            target=daemon.run,
            args=(store, [CaseStatusProjection()], stop),
            kwargs={"poll_interval": poll_interval},
        )
        runner.start()
        try:
            time.sleep(0.3)  # the daemon is now waiting
            ingest_lines(lines, "live", store)
            head = store.recorder.max_notification_id() or 0
            deadline = time.monotonic() + 20
            while Projector(store, CaseStatusProjection()).position() < head:
                assert time.monotonic() < deadline, "projector never woke up"
                time.sleep(0.05)
        finally:
            stop.set()
            runner.join()

    # A poll interval far longer than the wait: only the notification can wake it.
    project_until_seen(_lines(casegen.generate(3, seed=41)), poll_interval=600)
    # Listening on a channel nobody notifies: only polling can find the events.
    real_listen = daemon._listen

    def deaf(url: str, channel: str) -> Any:
        conn = real_listen(url, channel)
        conn.execute("UNLISTEN *")
        return conn

    monkeypatch.setattr(daemon, "_listen", deaf)
    project_until_seen(_lines(casegen.generate(3, seed=42)), poll_interval=0.2)
    assert views(store) == folded_views(store)


class Killed(BaseException):
    """The rebuilding process dies: a BaseException, like the KeyboardInterrupt or
    SystemExit that end a real process (an Exception would be a failing event)."""


class CrashingReplayer(CaseStatusReplayer):
    def __init__(self, projection: CrashingRebuild) -> None:
        self.projection = projection

    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        self.projection.left -= 1
        if self.projection.left < 0:
            raise Killed("killed mid-rebuild")
        return super().case(events)


class CrashingRebuild(CaseStatusProjection):
    """Dies after folding 10 cases (in each process that folds)."""

    left = 10

    def replayer(self) -> CaseStatusReplayer:
        return CrashingReplayer(self)


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "two-workers"])
def test_interrupted_rebuild_leaves_live_untouched_and_can_restart(
    store: CaseStore, workers: int
) -> None:
    ingest_lines(_lines(casegen.generate(40, seed=6)), "f", store)
    Projector(store, CaseStatusProjection()).catch_up()
    before = _rows(store)
    with pytest.raises(Killed, match="killed mid-rebuild"):  # raised in a worker too
        rebuild.rebuild(store, [CrashingRebuild()], workers=workers, opener=open_test_store)
    assert _rows(store) == before
    report = rebuild.rebuild(store, [CaseStatusProjection()])
    assert report.cases == 40
    assert _rows(store) == before  # the rebuilt view equals the incremental one
    [shadow] = rows(store, "SELECT to_regclass(%s) AS t", (f"{store.schema}.case_status__next",))
    assert shadow["t"] is None


def test_rebuild_while_writers_append_then_live_projector_continues(store: CaseStore) -> None:
    ingest_lines(_lines(casegen.generate(50, seed=7)), "a", store)
    Projector(store, CaseStatusProjection()).catch_up()
    more = _lines(casegen.generate(50, seed=8))
    writer = threading.Thread(
        target=ingest_lines, args=(more, "b", store), kwargs={"batch_size": 5}
    )
    writer.start()
    rebuild.rebuild(store, [CaseStatusProjection()], page_size=13)
    writer.join()
    Projector(store, CaseStatusProjection()).catch_up()
    assert views(store) == folded_views(store)


def test_verify_reports_a_tampered_row(store: CaseStore) -> None:
    ingest_lines(_lines(casegen.generate(20, seed=9)), "a", store)
    Projector(store, CaseStatusProjection()).catch_up()
    assert rebuild.verify(store, [CaseStatusProjection()]).ok
    execute(
        store,
        "UPDATE {schema}.case_status SET view = jsonb_set(view, '{{category}}', '\"tampered\"')"
        " WHERE case_id = (SELECT case_id FROM {schema}.case_status ORDER BY case_id LIMIT 1)"
        " RETURNING application_number",
    )
    report = rebuild.verify(store, [CaseStatusProjection()])
    assert not report.ok
    assert len(report.differences["case_status"]) == 2  # the live row and the replayed one
    rebuild.rebuild(store, [CaseStatusProjection()])
    assert rebuild.verify(store, [CaseStatusProjection()]).ok


_FIRST_ROW = " WHERE case_id = (SELECT case_id FROM {schema}.{shadow} ORDER BY case_id LIMIT 1)"


@pytest.mark.parametrize(
    ("tampering", "failure"),
    [
        ("DELETE FROM {schema}.{shadow}" + _FIRST_ROW, "9 rows"),
        (
            "UPDATE {schema}.{shadow} SET view = jsonb_set(view, '{{category}}', '\"tampered\"')"
            + _FIRST_ROW,
            r"case_status__next: 10 rows .* 10 ",
        ),
        (
            "UPDATE {schema}.{shadow} SET application_number = 'F999999999'" + _FIRST_ROW,
            r"case_status__next: 10 rows .* 10 ",
        ),
        (
            "UPDATE {schema}.{shadow} SET position = position + 1" + _FIRST_ROW,
            r"case_status__next: 10 rows .* 10 ",
        ),
    ],
    ids=["a-row-fewer", "view", "application_number", "position"],
)
def test_rebuild_check_catches_a_new_table_that_is_not_the_replay(
    store: CaseStore, monkeypatch: pytest.MonkeyPatch, tampering: LiteralString, failure: str
) -> None:
    """Before it goes live, the new table is checked against the replay: a row fewer, or a
    row changed while the count stays, fails the rebuild and leaves the live view as it was."""
    ingest_lines(_lines(casegen.generate(10, seed=10)), "a", store)
    Projector(store, CaseStatusProjection()).catch_up()
    before = _rows(store)
    real_check = rebuild._check

    def tamper_then_check(
        store_: CaseStore, projection: Any, suffix: str, report: Any, run: Any
    ) -> None:
        assert execute(store_, tampering, shadow="case_status" + suffix) == 1
        real_check(store_, projection, suffix, report, run)

    monkeypatch.setattr(rebuild, "_check", tamper_then_check)
    with pytest.raises(rebuild.RebuildCheckFailed, match=failure):
        rebuild.rebuild(store, [CaseStatusProjection()])
    assert _rows(store) == before


def test_case_events_decode_for_projection(store: CaseStore) -> None:
    ingest_lines(_lines(casegen.generate(2, seed=1)), "a", store)
    events = [e for i in folded_views(store) for e in store.stored_events(i)]
    assert all(isinstance(e, Case.Event) for e in events)


class CountingPages(PageCache):
    hits = 0

    def get(self, key: tuple[int, int, int]) -> list[Positioned] | None:
        page = super().get(key)
        self.hits += page is not None
        return page


def test_projectors_sharing_decoded_pages_miss_nothing(store: CaseStore) -> None:
    """Two projectors share a PageCache while writers keep appending: the second gets
    pages the first read before later commits, short ones included, and both end
    exactly at the pure fold of the log."""
    lines = _lines(casegen.generate(30, seed=50))
    chunks = [lines[i : i + 7] for i in range(0, len(lines), 7)]
    with store.datastore.transaction(commit=True) as curs:
        for statement in CaseStatusProjection.tables[0].create(store.schema, "__b"):
            curs.execute(statement)
    pages = CountingPages()
    first = Projector(store, CaseStatusProjection(), page_size=10, pages=pages)
    second = Projector(store, CaseStatusProjection(), page_size=10, suffix="__b", pages=pages)
    for number in range(0, len(chunks) - 1, 2):
        ingest_lines(chunks[number], f"c{number}", store)
        first.step()  # may read a short page: all that was committed
        ingest_lines(chunks[number + 1], f"c{number + 1}", store)
        second.step()  # the same page from the cache, though more is committed now
    for projector in (first, second):
        projector.catch_up()
    assert pages.hits > len(chunks) // 4
    expected = folded_views(store)
    for table in ("case_status", "case_status__b"):
        assert views(store, table) == expected


def test_db_init_resets_a_view_whose_table_layout_changed(
    database_url: str, store: CaseStore
) -> None:
    """A release that changes a view's columns needs no manual step: `db init`
    empties that view and rewinds its position, and the projector refills it from
    the log to the pure fold."""
    from adapters.postgres.schema import init_schema

    ingest_lines(_lines(casegen.generate(30, seed=5)), "f", store)
    Projector(store, CaseStatusProjection()).catch_up()
    # The layout of an older release:
    execute(store, "ALTER TABLE {schema}.case_status ADD COLUMN retired text")
    init_schema(database_url, store.schema)
    assert _rows(store) == {}
    assert statuses(store, [CaseStatusProjection()])[0].position == 0
    Projector(store, CaseStatusProjection()).catch_up()
    assert views(store) == folded_views(store)


def test_db_init_adds_a_staging_table_without_rewinding_its_view(
    database_url: str, store: CaseStore
) -> None:
    """notify_staged holds rows only during a rebuild: an install from before it gets the
    table and keeps the notifications position, so the changes its projector had not yet
    announced at the upgrade are still announced (a rewind to the head would skip them)."""
    from adapters.postgres.schema import init_schema
    from projections import notifications

    ingest_lines(_lines(casegen.generate(5, seed=6)), "f", store)
    projection = all_projections()[notifications.NAME]
    Projector(store, projection).catch_up()
    before = statuses(store, [projection])[0].position
    ingest_lines(_lines(casegen.generate(5, seed=7)), "g", store)  # not yet announced
    execute(store, "DROP TABLE {schema}.notify_staged")  # the layout of an older release
    init_schema(database_url, store.schema)
    assert statuses(store, [projection])[0].position == before
    assert rows(store, "SELECT count(*) AS n FROM {schema}.notify_staged") == [{"n": 0}]


# ---------------------------------------------------------------- a bad stored event


def _registered(store: CaseStore) -> set[str]:
    """Application numbers that case_parties holds, i.e. files one can register for."""
    parties = rows(store, "SELECT DISTINCT application_number FROM {schema}.case_parties")
    return {r["application_number"] for r in parties}


def _received(lines: list[bytes]) -> set[str]:
    return {
        json.loads(line)["application_number"]
        for line in lines
        if json.loads(line)["type"] == t.RECEIVED
    }


def test_a_nul_in_a_stored_event_is_dead_lettered_and_every_later_file_registers(
    store: CaseStore,
) -> None:
    store_nul_in_a_text_column(store, "F000000001")
    earlier = _lines(casegen.generate(4, seed=3))
    ingest_lines(earlier, "earlier", store)
    projections = list(all_projections().values())
    for projection in projections:
        Projector(store, projection, page_size=7).catch_up()
    later = _lines(casegen.generate(3, seed=4))
    ingest_lines(later, "later", store)
    for projection in projections:
        Projector(store, projection, page_size=7).catch_up()

    assert _registered(store) == _received(earlier) | _received(later)
    found = {s.name: s for s in statuses(store, projections)}
    assert all(s.halted_at is None and s.lag_events == 0 for s in found.values())
    parties = found["case_parties"]
    assert parties.dead_letters == 1
    assert parties.last_error and "NUL" in parties.last_error
    assert ("case_parties", 1, t.RECEIVED) in {d[:3] for d in _dead_letters(store)}


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "two-workers"])
def test_a_rebuild_dead_letters_a_nul_in_a_stored_event_and_keeps_every_other_file(
    store: CaseStore, workers: int
) -> None:
    lines = _lines(casegen.generate(6, seed=5))
    ingest_lines(lines[:20], "a", store)
    store_nul_in_a_text_column(store, "F000000001")
    ingest_lines(lines[20:], "b", store)
    projections = list(all_projections().values())
    for projection in projections:
        Projector(store, projection).catch_up()
    live_dead = _dead_letters(store)

    report = rebuild.rebuild(store, projections, workers=workers, opener=open_test_store)

    assert report.cases == 7
    assert _registered(store) == _received(lines)
    assert _dead_letters(store) == live_dead  # the same events, under the live names
    found = {s.name: s for s in statuses(store, projections)}
    assert found["case_parties"].dead_letters == 1
    assert all(s.halted_at is None and s.lag_events == 0 for s in found.values())
    assert rebuild.verify(store, projections).ok


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "two-workers"])
def test_a_stored_event_that_does_not_decode_is_dead_lettered_by_every_view_live_and_rebuilt(
    store: CaseStore, workers: int
) -> None:
    lines = _lines(casegen.generate(4, seed=12))
    ingest_lines(lines[:10], "a", store)
    store_undecodable(store, "F000000002")
    ingest_lines(lines[10:], "b", store)
    projections = list(all_projections().values())
    Projector(store, projections[0]).catch_up(upto=10)
    (waiting,) = statuses(store, projections[:1])  # the next event to apply does not decode
    assert (waiting.position, waiting.lag_events) == (10, waiting.head - 10)

    for projection in projections:
        Projector(store, projection, page_size=5).catch_up()
    live = _dead_letters(store)
    rebuild.rebuild(store, projections, workers=workers, opener=open_test_store)

    assert _registered(store) == _received(lines)
    found = statuses(store, projections)
    assert all(s.halted_at is None and s.lag_events == 0 for s in found)
    assert all(s.dead_letters == 1 for s in found)
    assert {d[:2] for d in live} == {(p.name, 11) for p in projections}
    assert _dead_letters(store) == live


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "two-workers"])
def test_a_value_too_large_for_an_index_is_dead_lettered_live_and_rebuilt(
    store: CaseStore, workers: int
) -> None:
    """PostgreSQL refuses an index entry over 2704 bytes with program_limit_exceeded, an
    OperationalError like a lost connection; from one event's value, it is that event's
    data error: dead-lettered, the view goes on (never retried for ever, never a crash)."""
    import secrets

    from tests.integration.stored_events import store_received_with

    lines = _lines(casegen.generate(4, seed=13))
    ingest_lines(lines[:10], "a", store)
    store_received_with(store, "F000000003", category=secrets.token_urlsafe(6000))
    ingest_lines(lines[10:], "b", store)
    stats = all_projections()["processing_stats"]

    Projector(store, stats, page_size=4).catch_up()
    live = _dead_letters(store)
    rebuild.rebuild(store, [stats], workers=workers, opener=open_test_store)

    (found,) = statuses(store, [stats])
    assert found.halted_at is None and found.lag_events == 0
    assert [(d[0], d[1]) for d in live] == [("processing_stats", 11)]
    assert "SQLSTATE 54000" in live[0][3]
    assert _dead_letters(store) == live


class _SlowPages(CaseStatusProjection):
    """case_status at 20 ms a page: a backlog that takes long to catch up."""

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        time.sleep(0.02)
        super().apply(curs, tables, page)


def test_the_daemon_stops_between_pages_of_a_long_catch_up(store: CaseStore) -> None:
    """SIGTERM (the stop event) during catch-up of a large backlog is honoured at the
    next page, not once the whole backlog is applied; the pages done are kept."""
    ingest_lines(_lines(casegen.generate(40, seed=42)), "backlog", store)
    head = store.recorder.max_notification_id() or 0
    stop = threading.Event()
    runner = threading.Thread(
        target=daemon.run, args=(store, [_SlowPages()], stop), kwargs={"page_size": 1}
    )
    runner.start()
    try:
        wait = time.monotonic() + 10
        while Projector(store, _SlowPages()).position() < 5:
            assert time.monotonic() < wait, "catch-up never started"
            time.sleep(0.01)
        stop.set()
        runner.join(2.0)
        assert not runner.is_alive(), "the daemon went on catching up after stop"
    finally:
        stop.set()
        runner.join()
    assert 5 <= Projector(store, _SlowPages()).position() < head

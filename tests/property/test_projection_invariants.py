"""The case_status table equals a pure fold of each case's events.

Events are ingested in a few chunks; after each chunk the Projector catches up
with random page sizes and is made to crash on random pages (before or after
the projection wrote its rows, inside the page's transaction), then a new
Projector resumes. The table must then equal ``case_status.fold`` of every
case's stored events, and a full rebuild from position 0 in a fresh schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from hypothesis import event, given, settings
from hypothesis import strategies as st
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import Composed

from adapters.postgres.event_store import CaseStore
from consumers.batch import BatchWriter
from consumers.file_ingest import ingest_lines
from projections import case_status
from projections.case_status_table import CaseStatusProjection, CaseStatusReplayer
from projections.event_log import Positioned
from projections.projector import Projector, Replayer
from projections.rebuild import rebuild
from projections.status import statuses
from projections.tables import Row
from tests.property.strategies import DB, History, event_rows, examples, histories
from tests.stores import execute, rows, scratch_store

# Small pages half the time, so that crashes land on some of many pages.
page_sizes = st.one_of(st.integers(1, 4), st.integers(1, 50))


class Crash(BaseException):
    """The projector process dies in the middle of a page.

    A BaseException, like the KeyboardInterrupt or SystemExit that end a real
    process: the engine treats an ordinary Exception from a handler as a
    failing event (dead letter, go on), which is not what is simulated here.
    """


class CrashingProjection:
    """CaseStatusProjection that dies on chosen calls (numbered across restarts)."""

    def __init__(self, crashes: dict[int, str], calls: list[int]) -> None:
        self.inner = CaseStatusProjection()
        self.name = self.inner.name
        self.tables = self.inner.tables
        self.crashes = crashes
        self.calls = calls  # a shared counter: one element

    def replayer(self) -> Replayer:
        return self.inner.replayer()

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        self.calls[0] += 1
        when = self.crashes.get(self.calls[0])
        if when == "before":
            raise Crash(f"before page {self.calls[0]}")
        self.inner.apply(curs, tables, page)
        if when == "after":
            raise Crash(f"after page {self.calls[0]}")


def catch_up_with_crashes(
    store: CaseStore, crashes: dict[int, str], calls: list[int], page_size: Callable[[], int]
) -> int:
    """Run projectors until one catches up; each crash starts a new one. Returns crashes."""
    for restart in range(len(crashes) + 1):
        projection = CrashingProjection(crashes, calls)
        projector = Projector(store, projection, page_size=page_size())
        try:
            projector.catch_up()
            return restart
        except Crash:
            # The crashed page left nothing behind: the table is still its position's prefix.
            assert_table_is_prefix_fold(store)
    raise AssertionError("more crashes than planned")


def assert_table_is_prefix_fold(store: CaseStore) -> None:
    """case_status is exactly the fold of the events up to the committed position."""
    position = Projector(store, CaseStatusProjection()).position()
    to_domain_event = store.app.mapper.to_domain_event
    prefix: dict[Any, list[Any]] = {}
    last: dict[Any, int] = {}
    for notification_id, originator_id, version, topic, state in event_rows(store):
        if notification_id > position:
            break
        stored = StoredEvent(
            originator_id=originator_id, originator_version=version, topic=topic, state=state
        )
        prefix.setdefault(originator_id, []).append(to_domain_event(stored))
        last[originator_id] = notification_id
    rows = status_rows(store)
    assert set(rows) == set(prefix)
    for cid, row in rows.items():
        view = case_status.fold(prefix[cid])
        assert view is not None
        assert row["view"] == view
        assert (row["application_number"], row["version"], row["position"]) == (
            view["application_number"],
            view["version"],
            last[cid],
        )


def status_rows(store: CaseStore) -> dict[Any, dict[str, Any]]:
    stored = rows(
        store,
        "SELECT case_id, application_number, view, version, position FROM {schema}.case_status",
    )
    return {r["case_id"]: dict(r) for r in stored}


def copy_events(source: CaseStore, target: CaseStore) -> None:
    """The event log, row for row (notification ids and recorded timestamps too), with the
    data keys its personal values are sealed with."""
    for table in ("privacy_subjects", "data_keys"):
        execute(target, "INSERT INTO {schema}.{t} SELECT * FROM {source}.{t}",
                source=source.schema, t=table)  # fmt: skip
    execute(
        target,
        "INSERT INTO {schema}.{events} (notification_id, originator_id, originator_version,"
        " topic, state) SELECT notification_id, originator_id, originator_version, topic, state"
        " FROM {source}.{events}",
        source=source.schema,
    )


@settings(DB)
@given(history=histories(), data=st.data())
def test_status_view_equals_a_fold_of_the_events(
    database_url: str, history: History, data: st.DataObject
) -> None:
    lines = list(history.lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(lines)), max_size=2), label="cuts"))
    chunks = [lines[a:b] for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True)]
    plan = data.draw(
        st.lists(st.tuples(st.integers(1, 4), st.sampled_from(("before", "after"))), max_size=3),
        label="crashes (pages since the last one, before/after writing)",
    )
    crashes, call = {}, 0
    for gap, when in plan:
        call += gap
        crashes[call] = when
    calls = [0]

    def page_size() -> int:
        return data.draw(page_sizes, label="page size")

    with scratch_store(database_url) as store:
        writer = BatchWriter(store)
        fired = 0
        for i, chunk in enumerate(chunks):
            ingest_lines(chunk, f"chunk-{i}.jsonl", store, batch_size=25, writer=writer)
            fired += catch_up_with_crashes(store, crashes, calls, page_size)
        event(f"projector crashes: {fired}")

        rows = status_rows(store)
        events = event_rows(store)
        assert_table_is_prefix_fold(store)  # with the position at the end of the log:
        assert {cid: row["view"] for cid, row in rows.items()} == {
            cid: case_status.fold(store.stored_events(cid)) for cid in {e[1] for e in events}
        }
        final = Projector(store, CaseStatusProjection())
        assert final.position() == (events[-1][0] if events else 0)
        assert final.catch_up() == 0

        with scratch_store(database_url) as fresh:
            copy_events(store, fresh)
            # Incrementally from position 0, in pages...
            size = data.draw(st.integers(1, 50), label="rebuild page size")
            Projector(fresh, CaseStatusProjection(), page_size=size).catch_up()
            assert status_rows(fresh) == rows
            # ... and the blue-green rebuild (a replay case by case, swapped in).
            rebuild(fresh, [CaseStatusProjection()], page_size=size)
            assert status_rows(fresh) == rows


class PoisonedReplayer(CaseStatusReplayer):
    def __init__(self, poisoned: frozenset[int]) -> None:
        self.poisoned = poisoned

    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        if any(p.position in self.poisoned for p in events):
            raise ValueError("poisoned event")
        return super().case(events)


class PoisonedProjection(CaseStatusProjection):
    """case_status whose handler and replayer fail on the events at chosen positions."""

    def __init__(self, poisoned: frozenset[int]) -> None:
        self.poisoned = poisoned

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        if any(p.position in self.poisoned for p in page):
            raise ValueError("poisoned event")
        super().apply(curs, tables, page)

    def replayer(self) -> CaseStatusReplayer:
        return PoisonedReplayer(self.poisoned)


def dead_positions(store: CaseStore) -> list[int]:
    letters = rows(
        store,
        "SELECT position FROM {schema}.projection_dead_letters"
        " WHERE projection = 'case_status' ORDER BY position",
    )
    return [r["position"] for r in letters]


@settings(DB, max_examples=examples(10))
@given(history=histories(), data=st.data())
def test_whatever_events_fail_the_view_goes_on_and_a_rebuild_equals_it(
    database_url: str, history: History, data: st.DataObject
) -> None:
    with scratch_store(database_url) as store:
        ingest_lines(list(history.lines), "history.jsonl", store, batch_size=25)
        head = store.recorder.max_notification_id() or 0
        poisoned = frozenset(
            data.draw(st.sets(st.integers(1, max(head, 1)), max_size=4), label="failing")
        )
        projection = PoisonedProjection(poisoned)

        Projector(store, projection, page_size=data.draw(page_sizes, label="page size")).catch_up()

        (status,) = statuses(store, [projection])
        assert (status.halted_at, status.position) == (None, head)
        live, dead = status_rows(store), dead_positions(store)
        assert set(dead) >= poisoned & set(range(1, head + 1))
        rebuild(store, [projection])
        assert status_rows(store) == live
        assert dead_positions(store) == dead

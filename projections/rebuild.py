"""Blue-green rebuilds and verification of a projection's tables.

``rebuild`` replays the whole log into shadow tables (``<table>__next``) while
the live tables keep serving (projections/replay: case by case, up to the head
at the start, each row written once, in worker processes on large logs). It
then checks the shadow (row count and an order-independent checksum of every
row against what the replay produced), catches it up to the head with the
ordinary projector, and swaps it in: in one transaction that holds the live
projection's position lock, it applies the last events, renames the tables and
moves the position. An interrupted rebuild leaves the live tables untouched;
running it again starts afresh. The swap hands the shadow's dead letters (the
events the replay left out) to the live projection. A projection that announces what
it applies (notifications) replays the whole log too, announcing only what its live
projection had not reached: its replay stages those changes, and the swap announces
them (``Announcing``, ``Staging``).

``verify`` replays into ``<table>__verify`` up to the live position and
reports rows that differ, without swapping.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from uuid import UUID

import structlog
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composable, Composed, Identifier

from projections.event_log import EventLog
from projections.parallel import Run, case_ranges, runner
from projections.ports import Opener, ProjectionStore
from projections.positions import Positions
from projections.projector import Projection, Projector
from projections.replay import RebuildCheckFailed, Report, TableCheck, drop, replay_into
from projections.tables import Table

log = structlog.get_logger("casetrack.projections")

SHADOW = "__next"
VERIFY = "__verify"


def rebuild(
    store: ProjectionStore,
    projections: Sequence[Projection],
    page_size: int = 5000,
    workers: int | None = None,
    opener: Opener | None = None,
) -> Report:
    """Rebuild the given projections from one pass over the log, then swap them in together.

    ``workers``: processes replaying case id ranges in parallel, each with a store
    from ``opener`` (see projections.parallel; by default one per core on large
    logs, and none without an opener).
    """
    projections = _announcing(store, projections)
    head = _head(store)
    with runner(workers, head, opener) as run:
        report = replay_into(store, projections, SHADOW, head, run)
        _check(store, projections, SHADOW, report, run)
    shadows = [Projector(store, p, page_size=page_size, suffix=SHADOW) for p in projections]
    report.caught_up = sum(shadow.catch_up() for shadow in shadows)
    _swap(store, shadows)
    log.info("rebuilt", projections=report.projections, events=report.events, head=head)
    return report


def verify(
    store: ProjectionStore,
    projections: Sequence[Projection],
    workers: int | None = None,
    opener: Opener | None = None,
) -> Report:
    """Replay into scratch tables up to the live positions and list the rows that differ."""
    upto = min(Projector(store, p).position() for p in projections)
    with runner(workers, upto, opener) as run:
        report = replay_into(store, projections, VERIFY, upto, run)
    try:
        with store.datastore.transaction(commit=False) as curs:
            for projection in sorted(projections, key=lambda p: p.name):
                position, _ = Projector(store, projection).lock_position(curs)
                shadow = Projector(store, projection, suffix=VERIFY)
                shadow.apply_pages(curs, upto=position, max_pages=None)
                for table in projection.tables:
                    report.differences[table.name] = _differences(curs, store.schema, table)
    finally:
        drop(store, projections, VERIFY)
    return report


@dataclass
class _CheckTask:
    table: Table
    suffix: str
    first: UUID | None
    stop: UUID | None


def _check(
    store: ProjectionStore,
    projections: Sequence[Projection],
    suffix: str,
    report: Report,
    run: Run,
) -> None:
    """The shadow holds exactly the rows the replay produced.

    Tables keyed by case are read back in the replay's case id ranges, in parallel.
    """
    tasks = []
    for table in (t for p in projections for t in p.tables):
        ranges = case_ranges(run.workers) if table.key[0] == "case_id" else [(None, None)]
        tasks += [_CheckTask(table, suffix, a, b) for a, b in ranges]
    found: dict[str, TableCheck] = defaultdict(TableCheck)
    for task, check in zip(tasks, run(_read_back, store, tasks), strict=True):
        found[task.table.name].absorb(check)
    for name, expected in report.tables.items():
        got = found[name]
        if (got.rows, got.checksum) != (expected.rows, expected.checksum):
            raise RebuildCheckFailed(
                f"{name}{suffix}: {got.rows} rows (checksum {got.checksum:x}),"
                f" replay produced {expected.rows} (checksum {expected.checksum:x})"
            )


def _read_back(store: ProjectionStore, task: _CheckTask) -> TableCheck:
    table = task.table
    where: Composable = SQL("true")
    params: list[UUID] = []
    if task.first is not None:
        where += SQL(" AND case_id >= %s")
        params.append(task.first)
    if task.stop is not None:
        where += SQL(" AND case_id < %s")
        params.append(task.stop)
    found = TableCheck()
    with store.datastore.get_connection() as conn, conn.transaction():
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        with conn.cursor(name="check", row_factory=tuple_row) as curs:
            curs.itersize = 10_000
            curs.execute(
                SQL("SELECT {} FROM {} WHERE {}").format(
                    SQL(", ").join(map(Identifier, table.column_names)),
                    table.ident(store.schema, task.suffix),
                    where,
                ),
                params,
            )
            for row in curs:
                found.add(row)
    return found


def _swap(store: ProjectionStore, shadows: Sequence[Projector]) -> None:
    """One transaction: lock the live positions, apply the last events, rename, move positions."""
    schema = store.schema
    positions = Positions(schema)
    with store.datastore.transaction(commit=True) as curs:
        for shadow in sorted(shadows, key=lambda s: s.projection.name):
            Projector(store, shadow.projection).lock_position(curs)
        for shadow in shadows:
            projection = shadow.projection
            shadow.apply_pages(curs, upto=None, max_pages=None)
            position, halted = shadow.lock_position(curs)
            if halted:
                raise RebuildCheckFailed(
                    f"{projection.name}: the rebuild halted on a database error at position"
                    f" {position + 1}; see `casetrack projections status`"
                )
            if isinstance(projection, Staging):
                projection.release_staged(curs, shadow.tables)
            for table in projection.tables:
                old = Identifier(table.name + "__old")
                curs.execute(SQL("DROP TABLE IF EXISTS {}.{}").format(Identifier(schema), old))
                curs.execute(
                    SQL("ALTER TABLE IF EXISTS {} RENAME TO {}").format(table.ident(schema), old)
                )
                curs.execute(
                    SQL("ALTER TABLE {} RENAME TO {}").format(
                        table.ident(schema, SHADOW), Identifier(table.name)
                    )
                )
                curs.execute(SQL("DROP TABLE IF EXISTS {}.{}").format(Identifier(schema), old))
            # The rebuilt view's dead letters and last error replace the old view's.
            positions.hand_over(curs, projection.name + SHADOW, projection.name, position)


def _differences(curs: Cursor[DictRow], schema: str, table: Table, limit: int = 20) -> list[str]:
    """Keys of rows that are only in the live table or only in the replay."""
    columns = SQL(", ").join(map(Identifier, table.column_names))
    key = SQL(", ").join(map(Identifier, table.key))
    live, replay = table.ident(schema), table.ident(schema, VERIFY)
    found = []
    for label, a, b in (("live only", live, replay), ("replay only", replay, live)):
        curs.execute(
            SQL(
                "SELECT {key} FROM (SELECT {c} FROM {a} EXCEPT SELECT {c} FROM {b}) d LIMIT %s"
            ).format(key=key, c=columns, a=a, b=b),
            (limit,),
        )
        found += [f"{label}: {', '.join(map(str, row.values()))}" for row in curs.fetchall()]
    return found


@runtime_checkable
class Announcing(Protocol):
    """A projection that announces what it applies (notifications): a rebuild's replay
    must announce what the live projection had not reached, and nothing before it."""

    def announcing_after(self, position: int) -> Projection: ...


@runtime_checkable
class Staging(Protocol):
    """A projection whose replay stages rows for the swap to act on (notifications: the
    changes to announce), in the swap's transaction, before the tables are renamed."""

    def release_staged(self, curs: Cursor[DictRow], tables: Mapping[str, Composed]) -> None: ...


def _announcing(store: ProjectionStore, projections: Sequence[Projection]) -> list[Projection]:
    """Each projection that announces, set to announce only after its live position (read
    before the head, so it is never past it)."""
    return [
        p.announcing_after(Projector(store, p).position()) if isinstance(p, Announcing) else p
        for p in projections
    ]


def _head(store: ProjectionStore) -> int:
    with store.datastore.transaction(commit=False) as curs:
        return EventLog(store).head(curs)

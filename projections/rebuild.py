"""Blue-green rebuilds and verification of a projection's tables.

``rebuild`` replays the whole log into shadow tables (``<table>__next``) while
the live tables keep serving: events are read case by case (ordered by case
and version, up to the head at the start), folded, and bulk-copied, so each
row is written once. Large logs are split by case id range over worker
processes (a case's events all go to one worker; aggregate tables are merged
from the workers' replayers and written once). It then checks the shadow (row
count and an order-independent checksum of every row against what the replay
produced), catches it up to the head with the ordinary projector, and swaps it
in: in one transaction that holds the live projection's position lock, it
applies the last events, renames the tables and moves the position. An
interrupted rebuild leaves the live tables untouched; running it again starts
afresh.

A bad stored event never stops a rebuild: each projection folds each case with
a replayer of its own, merged into the others only once the case's rows are
stored. A case whose fold raises, or whose rows the database refuses, is folded
again event by event; the events that fail are dead-lettered under the shadow's
name and left out, as the live projector leaves them out, and the rest is kept.
A stored event that does not decode is dead-lettered for every projection.
The swap hands the shadow's dead letters to the live projection.

``verify`` replays into ``<table>__verify`` up to the live position and
reports rows that differ, without swapping.
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
import psycopg
import structlog
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier
from psycopg.types.json import Jsonb

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from projections.parallel import Run, case_ranges, runner, worker_count
from projections.projector import (
    Positioned,
    Projection,
    Projector,
    Replayer,
    Row,
    Undecodable,
    dead_letter,
    decode,
    from_the_event,
)
from projections.tables import Table

log = structlog.get_logger("casetrack.projections")

SHADOW = "__next"
VERIFY = "__verify"
_FLUSH_ROWS = 20_000
# The writing connection idles in its transaction while cases are read and folded;
# flush at least this often, well inside eventsourcing's 5 s idle-in-transaction
# timeout, even for projections that make few rows per case.
_FLUSH_SECONDS = 1.0


class RebuildCheckFailed(RuntimeError):
    pass


@dataclass
class TableCheck:
    rows: int = 0
    checksum: int = 0

    def add(self, row: Row) -> None:
        self.rows += 1
        self.checksum = (self.checksum + _row_hash(row)) % 2**64

    def absorb(self, other: TableCheck) -> None:
        """Add another part's rows (the checksum is a sum, so parts combine in any order)."""
        self.rows += other.rows
        self.checksum = (self.checksum + other.checksum) % 2**64


@dataclass
class Report:
    projections: list[str]
    head: int
    events: int = 0
    cases: int = 0
    tables: dict[str, TableCheck] = field(default_factory=dict)
    caught_up: int = 0
    differences: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.differences.values())


def rebuild(
    store: CaseStore,
    projections: Sequence[Projection],
    page_size: int = 5000,
    workers: int | None = None,
) -> Report:
    """Rebuild the given projections from one pass over the log, then swap them in together.

    ``workers``: processes replaying case id ranges in parallel (see
    projections.parallel; by default one per core on large logs).
    """
    head = _head(store)
    with runner(worker_count(workers, head)) as run:
        report = _replay_into(store, projections, SHADOW, head, run)
        _check(store, projections, SHADOW, report, run)
    shadows = [Projector(store, p, page_size=page_size, suffix=SHADOW) for p in projections]
    report.caught_up = sum(shadow.catch_up() for shadow in shadows)
    _swap(store, shadows)
    log.info("rebuilt", projections=report.projections, events=report.events, head=head)
    return report


def verify(
    store: CaseStore, projections: Sequence[Projection], workers: int | None = None
) -> Report:
    """Replay into scratch tables up to the live positions and list the rows that differ."""
    upto = min(Projector(store, p).position() for p in projections)
    with runner(worker_count(workers, upto)) as run:
        report = _replay_into(store, projections, VERIFY, upto, run)
    try:
        with store.datastore.transaction(commit=False) as curs:
            for projection in sorted(projections, key=lambda p: p.name):
                position, _ = Projector(store, projection).lock_position(curs)
                shadow = Projector(store, projection, suffix=VERIFY)
                shadow.apply_pages(curs, upto=position, max_pages=None)
                for table in projection.tables:
                    report.differences[table.name] = _differences(curs, store.schema, table)
    finally:
        _drop(store, projections, VERIFY)
    return report


# ---------------------------------------------------------------- replay


@dataclass
class _Task:
    url: str
    schema: str
    projections: Sequence[Projection]
    suffix: str
    upto: int
    first: UUID | None  # case ids >= first (None: from the lowest)
    stop: UUID | None  # case ids < stop (None: to the highest)


@dataclass
class _Part:
    events: int
    cases: int
    tables: dict[str, TableCheck]
    replayers: list[Replayer]


def _replay_into(
    store: CaseStore, projections: Sequence[Projection], suffix: str, upto: int, run: Run
) -> Report:
    """Copy into bare tables and add their keys after, which is much faster on a large
    log. If the keys refuse a row (a duplicate key, a value too large for an index),
    replay again with the keys in place, so that the row is refused while its case is
    copied, where the writer salvages that case event by event."""
    try:
        return _replay(store, projections, suffix, upto, run, keys_first=False)
    except Exception as error:  # the datastore wraps psycopg's errors in the library's
        cause = error if isinstance(error, psycopg.Error) else error.__cause__
        if not isinstance(cause, psycopg.Error) or not from_the_event(cause):
            raise
        log.warning(
            "rebuild: a row refused by the keys; replaying with keys first",
            error=type(cause).__name__,
        )
        return _replay(store, projections, suffix, upto, run, keys_first=True)


def _replay(
    store: CaseStore,
    projections: Sequence[Projection],
    suffix: str,
    upto: int,
    run: Run,
    *,
    keys_first: bool,
) -> Report:
    _drop(store, projections, suffix)
    report = Report([p.name for p in projections], upto)
    tables = [t for p in projections for t in p.tables]
    report.tables = {t.name: TableCheck() for t in tables}
    with store.datastore.transaction(commit=True) as curs:
        for table in tables:
            for statement in (
                table.create(store.schema, suffix)
                if keys_first
                else [table.create_table(store.schema, suffix)]
            ):
                curs.execute(statement)
        for projection in projections:
            curs.execute(
                SQL(
                    "INSERT INTO {}.projection_positions (name, position) VALUES (%s, %s)"
                    " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position,"
                    " halted_at = NULL, last_error = NULL"
                ).format(Identifier(store.schema)),
                (projection.name + suffix, upto),
            )
    tasks = [
        _Task(store.url, store.schema, projections, suffix, upto, first, stop)
        for first, stop in case_ranges(run.workers)
    ]
    parts = run(_replay_range, store, tasks)
    replayers = parts[0].replayers
    for part in parts:
        report.events += part.events
        report.cases += part.cases
        for name, check in part.tables.items():
            report.tables[name].absorb(check)
        if part is not parts[0]:
            for mine, theirs in zip(replayers, part.replayers, strict=True):
                mine.absorb(theirs)
    writer = _Writer(store, projections, suffix, report.tables, replayers)
    with store.datastore.transaction(commit=True) as curs:
        for replayer in replayers:
            writer.emit(replayer.finish())
        writer.flush(curs)
        if not keys_first:
            for table in tables:
                for statement in table.create_keys(store.schema, suffix):
                    curs.execute(statement)
    return report


class _Probe(Exception):
    """Rolls back the savepoint of rows written only to see whether they can be stored."""


@dataclass
class _Fold:
    """One projection's rows for one case, from a replayer of its own (None: it raised)."""

    projection: int
    events: Sequence[Positioned]
    replayer: Replayer
    rows: list[tuple[str, Row]] | None


class _Writer:
    """Buffers folded cases, bulk-copies their rows, counts them into their checks and
    merges their replayers; salvages, event by event, a case that cannot be stored."""

    def __init__(
        self,
        store: CaseStore,
        projections: Sequence[Projection],
        suffix: str,
        checks: dict[str, TableCheck],
        replayers: Sequence[Replayer],
    ) -> None:
        self.schema = store.schema
        self.projections = projections
        self.suffix = suffix
        self.copy = {
            t.name: t.copy_statement(store.schema, suffix) for p in projections for t in p.tables
        }
        self.checks = checks
        self.replayers = replayers
        self.folds: list[_Fold] = []
        self.undecodable: list[Undecodable] = []
        self.loose: list[tuple[str, Row]] = []
        self.buffered = 0

    def case(self, stored: Sequence[Positioned | Undecodable]) -> None:
        """Fold one case for every projection, without the events that do not decode."""
        events = [e for e in stored if isinstance(e, Positioned)]
        self.undecodable += [e for e in stored if isinstance(e, Undecodable)]
        if not events:
            return
        for number, projection in enumerate(self.projections):
            replayer = projection.replayer()
            try:
                rows: list[tuple[str, Row]] | None = list(replayer.case(events))
            except Exception:
                rows = None  # salvaged at the flush
            self.folds.append(_Fold(number, events, replayer, rows))
            self.buffered += len(rows or ())

    def emit(self, rows: Iterable[tuple[str, Row]]) -> None:
        """Rows of no single case (aggregates, after the last case)."""
        for table_name, row in rows:
            self.loose.append((table_name, row))
            self.checks[table_name].add(row)
            self.buffered += 1

    def flush(self, curs: Cursor[DictRow]) -> None:
        for item in self.undecodable:
            for projection in self.projections:
                dead_letter(curs, self.schema, projection.name + self.suffix, item, item.error)
        self.undecodable.clear()
        folds, self.folds = self.folds, []
        whole = [f for f in folds if f.rows is not None]
        rows = [row for f in whole for row in f.rows or ()]
        if self._store(curs, rows + self.loose, keep=True) is not None:
            if self.loose:
                raise RebuildCheckFailed("the database refused rows that aggregate many cases")
            for fold in whole:  # one at a time, to find those that cannot be stored
                if self._store(curs, fold.rows or [], keep=True) is not None:
                    fold.rows = None
        for fold in folds:
            if fold.rows is None:
                self._salvage(curs, fold)
            for table_name, row in fold.rows or ():
                self.checks[table_name].add(row)
            self.replayers[fold.projection].absorb(fold.replayer)
        self.loose.clear()
        self.buffered = 0

    def _salvage(self, curs: Cursor[DictRow], fold: _Fold) -> None:
        """Fold the case again event by event; dead-letter each event whose fold
        raises or whose rows cannot be stored, and store the fold of the others."""
        projection = self.projections[fold.projection]
        kept: list[Positioned] = []
        for item in fold.events:
            try:
                rows = list(projection.replayer().case([*kept, item]))
            except Exception as e:
                error: Exception | None = e
            else:
                error = self._store(curs, rows, keep=False)
            if error is None:
                kept.append(item)
            else:
                dead_letter(curs, self.schema, projection.name + self.suffix, item, error)
        fold.replayer = projection.replayer()
        fold.rows = list(fold.replayer.case(kept)) if kept else []
        error = self._store(curs, fold.rows, keep=True)
        if error is not None:  # the same rows were stored a moment ago
            raise error

    def _store(
        self, curs: Cursor[DictRow], rows: Sequence[tuple[str, Row]], keep: bool
    ) -> Exception | None:
        """Copy ``rows`` in a savepoint (rolled back unless ``keep``); the error of an
        event's data, None if they could be stored. A database fault raises."""
        by_table: dict[str, list[Row]] = defaultdict(list)
        for table_name, row in rows:
            by_table[table_name].append(row)
        try:
            with curs.connection.transaction():
                for table_name, table_rows in by_table.items():
                    with curs.copy(self.copy[table_name]) as copy:
                        for row in table_rows:
                            copy.write_row(row)
                if not keep:
                    raise _Probe
        except _Probe:
            pass
        except Exception as e:
            if not from_the_event(e):
                raise
            return e
        return None


def _replay_range(store: CaseStore, task: _Task) -> _Part:
    """Fold and copy the cases of one id range (in a worker, or in-process)."""
    tables = [t for p in task.projections for t in p.tables]
    part = _Part(0, 0, {t.name: TableCheck() for t in tables}, [])
    part.replayers = [p.replayer() for p in task.projections]
    writer = _Writer(store, task.projections, task.suffix, part.tables, part.replayers)
    # The fold makes millions of acyclic objects, and the rows buffered between flushes
    # survive the young collections: the cyclic collector's passes over them cost about
    # a third of the fold, and there is nothing for it to find. Reference counting frees
    # everything here; the collector runs again once the range is done.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with store.datastore.transaction(commit=True) as curs:
            flushed_at = time.monotonic()
            for events in _cases(store, task.upto, task.first, task.stop):
                part.cases += 1
                part.events += len(events)
                writer.case(events)
                if writer.buffered >= _FLUSH_ROWS or time.monotonic() - flushed_at > _FLUSH_SECONDS:
                    writer.flush(curs)
                    flushed_at = time.monotonic()
            writer.flush(curs)
    finally:
        if collecting:
            gc.enable()
    return part


def _cases(
    store: CaseStore, upto: int, first: UUID | None = None, stop: UUID | None = None
) -> Iterator[list[Positioned | Undecodable]]:
    """Every case's events up to ``upto`` (ids in [first, stop)), case by case, in version order."""
    where = [SQL("notification_id <= %s")]
    params: list[Any] = [upto]
    if first is not None:
        where.append(SQL("originator_id >= %s"))
        params.append(first)
    if stop is not None:
        where.append(SQL("originator_id < %s"))
        params.append(stop)
    query = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{}"
        " WHERE {} ORDER BY originator_id, originator_version"
    ).format(Identifier(store.schema), Identifier(EVENTS_TABLE), SQL(" AND ").join(where))
    with (
        store.datastore.get_connection() as conn,
        conn.transaction(),
        conn.cursor(name="replay", row_factory=tuple_row) as cursor,
    ):
        cursor.itersize = 10_000
        cursor.execute(query, params, binary=True)
        current: list[Positioned | Undecodable] = []
        for position, case_id, version, topic, state in cursor:
            if current and current[0].case_id != case_id:
                yield current
                current = []
            current.append(decode(store, position, case_id, version, topic, state))
        if current:
            yield current


# ---------------------------------------------------------------- check and swap


@dataclass
class _CheckTask:
    url: str
    schema: str
    table: Table
    suffix: str
    first: UUID | None
    stop: UUID | None


def _check(
    store: CaseStore,
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
        tasks += [_CheckTask(store.url, store.schema, table, suffix, a, b) for a, b in ranges]
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


def _read_back(store: CaseStore, task: _CheckTask) -> TableCheck:
    table = task.table
    where, params = SQL("true"), []
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


def _swap(store: CaseStore, shadows: Sequence[Projector]) -> None:
    """One transaction: lock the live positions, apply the last events, rename, move positions."""
    schema = store.schema
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
            curs.execute(
                SQL("DELETE FROM {}.projection_dead_letters WHERE projection = %s").format(
                    Identifier(schema)
                ),
                (projection.name,),
            )
            curs.execute(
                SQL(
                    "UPDATE {}.projection_dead_letters SET projection = %s WHERE projection = %s"
                ).format(Identifier(schema)),
                (projection.name, projection.name + SHADOW),
            )
            curs.execute(
                SQL(
                    "UPDATE {s}.projection_positions p SET position = %s, halted_at = NULL,"
                    " last_error = n.last_error, last_error_at = n.last_error_at,"
                    " updated_at = now() FROM {s}.projection_positions n"
                    " WHERE p.name = %s AND n.name = %s"
                ).format(s=Identifier(schema)),
                (position, projection.name, projection.name + SHADOW),
            )
            curs.execute(
                SQL("DELETE FROM {}.projection_positions WHERE name = %s").format(
                    Identifier(schema)
                ),
                (projection.name + SHADOW,),
            )


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


def _drop(store: CaseStore, projections: Sequence[Projection], suffix: str) -> None:
    with store.datastore.transaction(commit=True) as curs:
        for projection in projections:
            for table in projection.tables:
                curs.execute(
                    SQL("DROP TABLE IF EXISTS {}").format(table.ident(store.schema, suffix))
                )
            for table_name in ("projection_positions", "projection_dead_letters"):
                column = "name" if table_name == "projection_positions" else "projection"
                curs.execute(
                    SQL("DELETE FROM {}.{} WHERE {} = %s").format(
                        Identifier(store.schema), Identifier(table_name), Identifier(column)
                    ),
                    (projection.name + suffix,),
                )


def _head(store: CaseStore) -> int:
    return store.recorder.max_notification_id() or 0


def _row_hash(row: Row) -> int:
    """Hash of a row as the replay produced it or as PostgreSQL returns it.

    Projections produce timestamps in UTC and the check reads with the session
    time zone set to UTC, so both sides serialise identically.
    """
    canonical = orjson.dumps(row, default=_unwrap, option=orjson.OPT_SORT_KEYS)
    return int.from_bytes(hashlib.blake2b(canonical, digest_size=8).digest(), "big")


def _unwrap(value: Any) -> Any:
    if isinstance(value, Jsonb):
        return value.obj
    raise TypeError(f"cannot checksum a {type(value).__name__}")

"""Replays the log into fresh tables, case by case, for a rebuild or a verify.

Events are read case by case (ordered by case and version, up to a given
position), folded, and bulk-copied, so each row is written once. Large logs are
split by case id range over worker processes (projections/parallel: a case's
events all go to one worker; aggregate tables are merged from the workers'
replayers and written once). Every row written is counted into a ``TableCheck``
(a row count and an order-independent checksum), against which the rebuild
reads the tables back.

A bad stored event never stops a replay: each projection folds each case with
a replayer of its own, merged into the others only once the case's rows are
stored. A case whose fold raises, or whose rows the database refuses, is folded
again event by event; the events that fail are dead-lettered under the replay's
name (``<projection><suffix>``) and left out, as the live projector leaves them
out, and the rest is kept. A stored event that does not decode is dead-lettered
for every projection.
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
import structlog
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL
from psycopg.types.json import Jsonb

from projections.event_log import EventLog, Positioned, Stored, Undecodable
from projections.failures import from_the_event, refused
from projections.parallel import Run, case_ranges
from projections.ports import ProjectionStore
from projections.positions import Positions
from projections.projector import Projection, Replayer, dead_letter, for_store
from projections.tables import Row

log = structlog.get_logger("casetrack.projections")

_FLUSH_ROWS = 20_000
# The writing connection idles in its transaction while cases are read and folded;
# flush at least this often, well inside eventsourcing's 5 s idle-in-transaction
# timeout, even for projections that make few rows per case.
_FLUSH_SECONDS = 1.0


class RebuildCheckFailed(RuntimeError):
    """The replayed tables cannot be trusted: the live ones stay."""


@dataclass
class TableCheck:
    """A table's row count and the sum of its rows' hashes (order-independent)."""

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
    """What a rebuild or a verify did: the replay's counts and checks, then what followed."""

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


@dataclass
class _Task:
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


def replay_into(
    store: ProjectionStore, projections: Sequence[Projection], suffix: str, upto: int, run: Run
) -> Report:
    """Replay the log up to ``upto`` into ``<table><suffix>`` for each projection's tables,
    with each projection's position at ``upto`` under ``<projection><suffix>``.

    Copy into bare tables and add their keys after, which is much faster on a large
    log. If the keys refuse a row (a duplicate key, a value too large for an index),
    replay again with the keys in place, so that the row is refused while its case is
    copied, where the writer salvages that case event by event."""
    try:
        return _replay(store, projections, suffix, upto, run, keys_first=False)
    except Exception as error:  # the datastore wraps psycopg's errors in the library's
        if not refused(error):
            raise
        log.warning(
            "rebuild: a row refused by the keys; replaying with keys first",
            error=type(error.__cause__ or error).__name__,
        )
        return _replay(store, projections, suffix, upto, run, keys_first=True)


def _replay(
    store: ProjectionStore,
    projections: Sequence[Projection],
    suffix: str,
    upto: int,
    run: Run,
    *,
    keys_first: bool,
) -> Report:
    drop(store, projections, suffix)
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
        positions = Positions(store.schema)
        for projection in projections:
            positions.start(curs, projection.name + suffix, upto)
    tasks = [
        _Task(projections, suffix, upto, first, stop) for first, stop in case_ranges(run.workers)
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
    bound = [for_store(p, store) for p in projections]
    writer = _Writer(store, bound, suffix, report.tables, replayers)
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
        store: ProjectionStore,
        projections: Sequence[Projection],
        suffix: str,
        checks: dict[str, TableCheck],
        replayers: Sequence[Replayer],
    ) -> None:
        self.positions = Positions(store.schema)
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

    def case(self, stored: Sequence[Stored]) -> None:
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
                dead_letter(curs, self.positions, projection.name + self.suffix, item, item.error)
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
                dead_letter(curs, self.positions, projection.name + self.suffix, item, error)
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


def _replay_range(store: ProjectionStore, task: _Task) -> _Part:
    """Fold and copy the cases of one id range (in a worker, or in-process)."""
    projections = [for_store(p, store) for p in task.projections]  # this process's store
    tables = [t for p in projections for t in p.tables]
    part = _Part(0, 0, {t.name: TableCheck() for t in tables}, [])
    part.replayers = [p.replayer() for p in projections]
    writer = _Writer(store, projections, task.suffix, part.tables, part.replayers)
    # The fold makes millions of acyclic objects, and the rows buffered between flushes
    # survive the young collections: the cyclic collector's passes over them cost about
    # a third of the fold, and there is nothing for it to find. Reference counting frees
    # everything here; the collector runs again once the range is done.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with store.datastore.transaction(commit=True) as curs:
            flushed_at = time.monotonic()
            for events in EventLog(store).cases(task.upto, task.first, task.stop):
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


def drop(store: ProjectionStore, projections: Sequence[Projection], suffix: str) -> None:
    """Drop the tables ``<table><suffix>`` and forget ``<projection><suffix>``."""
    positions = Positions(store.schema)
    with store.datastore.transaction(commit=True) as curs:
        for projection in projections:
            for table in projection.tables:
                curs.execute(
                    SQL("DROP TABLE IF EXISTS {}").format(table.ident(store.schema, suffix))
                )
            positions.forget(curs, projection.name + suffix)


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
    if isinstance(value, bytes):  # bytea (blind indexes), as produced and as read back
        return value.hex()
    raise TypeError(f"cannot checksum a {type(value).__name__}")

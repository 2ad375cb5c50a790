"""Blue-green rebuilds and verification of a projection's tables.

``rebuild`` replays the whole log into shadow tables (``<table>__next``) while
the live tables keep serving: events are read case by case (ordered by case
and version, up to the head at the start), folded, and bulk-copied, so each
row is written once. It then checks the shadow (row count and an
order-independent checksum of every row against what the replay produced),
catches it up to the head with the ordinary projector, and swaps it in: in one
transaction that holds the live projection's position lock, it applies the
last events, renames the tables and moves the position. An interrupted
rebuild leaves the live tables untouched; running it again starts afresh.

``verify`` replays into ``<table>__verify`` up to the live position and
reports rows that differ, without swapping.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from eventsourcing.persistence import StoredEvent
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier
from psycopg.types.json import Jsonb

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from projections.projector import Positioned, Projection, Projector, Row
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


def rebuild(store: CaseStore, projections: Sequence[Projection], page_size: int = 5000) -> Report:
    """Rebuild the given projections from one pass over the log, then swap them in together."""
    head = _head(store)
    report = _replay_into(store, projections, SHADOW, head)
    _check(store, projections, SHADOW, report)
    shadows = [Projector(store, p, page_size=page_size, suffix=SHADOW) for p in projections]
    report.caught_up = sum(shadow.catch_up() for shadow in shadows)
    _swap(store, shadows)
    log.info("rebuilt", projections=report.projections, events=report.events, head=head)
    return report


def verify(store: CaseStore, projections: Sequence[Projection]) -> Report:
    """Replay into scratch tables up to the live positions and list the rows that differ."""
    upto = min(Projector(store, p).position() for p in projections)
    report = _replay_into(store, projections, VERIFY, upto)
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


def _replay_into(
    store: CaseStore, projections: Sequence[Projection], suffix: str, upto: int
) -> Report:
    _drop(store, projections, suffix)
    report = Report([p.name for p in projections], upto)
    tables = [t for p in projections for t in p.tables]
    report.tables = {t.name: TableCheck() for t in tables}
    by_name = {t.name: t for t in tables}
    replayers = [p.replayer() for p in projections]
    buffers: dict[str, list[Row]] = defaultdict(list)
    with store.datastore.transaction(commit=True) as curs:
        for table in tables:
            for statement in table.create(store.schema, suffix, with_keys=False):
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

    def emit(rows: Iterable[tuple[str, Row]]) -> None:
        for table_name, row in rows:
            buffers[table_name].append(row)
            report.tables[table_name].add(row)

    def flush(curs: Cursor[DictRow]) -> None:
        for table_name, rows in buffers.items():
            if rows:
                with curs.copy(by_name[table_name].copy_statement(store.schema, suffix)) as copy:
                    for row in rows:
                        copy.write_row(row)
                rows.clear()

    with store.datastore.transaction(commit=True) as curs:
        flushed_at = time.monotonic()
        for events in _cases(store, upto):
            report.cases += 1
            report.events += len(events)
            for replayer in replayers:
                emit(replayer.case(events))
            if (
                sum(map(len, buffers.values())) >= _FLUSH_ROWS
                or time.monotonic() - flushed_at > _FLUSH_SECONDS
            ):
                flush(curs)
                flushed_at = time.monotonic()
        for replayer in replayers:
            emit(replayer.finish())
        flush(curs)
        for table in tables:
            for statement in table.create_keys(store.schema, suffix):
                curs.execute(statement)
    return report


def _cases(store: CaseStore, upto: int) -> Iterator[list[Positioned]]:
    """Every case's events up to ``upto``, case by case, in version order."""
    to_domain_event = store.app.mapper.to_domain_event
    query = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{}"
        " WHERE notification_id <= %s ORDER BY originator_id, originator_version"
    ).format(Identifier(store.schema), Identifier(EVENTS_TABLE))
    with (
        store.datastore.get_connection() as conn,
        conn.transaction(),
        conn.cursor(name="replay", row_factory=tuple_row) as cursor,
    ):
        cursor.itersize = 10_000
        cursor.execute(query, (upto,), binary=True)
        current: list[Positioned] = []
        for position, case_id, version, topic, state in cursor:
            if current and current[0].case_id != case_id:
                yield current
                current = []
            event = to_domain_event(StoredEvent(case_id, version, topic, state))
            current.append(Positioned(position, case_id, event))  # type: ignore[arg-type]
        if current:
            yield current


# ---------------------------------------------------------------- check and swap


def _check(
    store: CaseStore, projections: Sequence[Projection], suffix: str, report: Report
) -> None:
    """The shadow holds exactly the rows the replay produced."""
    with store.datastore.get_connection() as conn, conn.transaction():
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        for table in (t for p in projections for t in p.tables):
            found = TableCheck()
            with conn.cursor(name="check", row_factory=tuple_row) as curs:
                curs.itersize = 10_000
                curs.execute(
                    SQL("SELECT {} FROM {}").format(
                        SQL(", ").join(map(Identifier, table.column_names)),
                        table.ident(store.schema, suffix),
                    )
                )
                for row in curs:
                    found.add(row)
            expected = report.tables[table.name]
            if (found.rows, found.checksum) != (expected.rows, expected.checksum):
                raise RebuildCheckFailed(
                    f"{table.name}{suffix}: {found.rows} rows (checksum {found.checksum:x}),"
                    f" replay produced {expected.rows} (checksum {expected.checksum:x})"
                )


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
                    f"{projection.name}: the rebuild halted on a failing event at position"
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
            curs.execute(
                SQL(
                    "UPDATE {}.projection_positions SET position = %s, halted_at = NULL,"
                    " last_error = NULL, last_error_at = NULL, updated_at = now() WHERE name = %s"
                ).format(Identifier(schema)),
                (position, projection.name),
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
            curs.execute(
                SQL("DELETE FROM {}.projection_positions WHERE name = %s").format(
                    Identifier(store.schema)
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

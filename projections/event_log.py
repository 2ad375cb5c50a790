"""The case event log as projections read it: every statement they run on the events table.

The recorder (adapters/postgres) writes the table; here it is read in the two orders
projections need: by position (a page after a projection's position, the oldest
event it has not applied, the head) and by case (a rebuild folds each case whole).
Each stored event is decoded with the application's mapper; one that does not
decode is an ``Undecodable``, which every projection dead-letters and passes.

The recorder locks the table on insert, so insert order equals commit order and
reading "after my position" never passes over a gap that fills in later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from domain.case import Case
from projections.ports import EventMapper, ProjectionStore


@dataclass(frozen=True)
class Positioned:
    """A case event with its position (notification id) in the log."""

    position: int
    case_id: UUID
    event: Case.Event


@dataclass(frozen=True)
class Undecodable:
    """A stored event that does not decode (a corrupt row, a class since removed):
    every projection dead-letters it and goes on."""

    position: int
    case_id: UUID
    topic: str
    error: Exception


Stored = Positioned | Undecodable


def decode(
    mapper: EventMapper, position: int, case_id: UUID, version: int, topic: str, state: bytes
) -> Stored:
    try:
        event = mapper.to_domain_event(StoredEvent(case_id, version, topic, state))
    except Exception as e:
        return Undecodable(position, case_id, topic, e)
    # The mapper is typed for any domain event; this log holds Case events only.
    return Positioned(position, case_id, cast(Case.Event, event))


def head_statement(schema: str, events_table: str) -> Composed:
    """The head: the last position in the log (0 when empty). A statement of its own so
    that the HTTP API, on its async pool, runs the same one."""
    return SQL("SELECT coalesce(max(notification_id), 0) AS head FROM {}.{}").format(
        Identifier(schema), Identifier(events_table)
    )


_REPLAY_BATCH = 10_000  # rows a replay fetches (and fetches the keys of) at a time
_COLUMNS = SQL("notification_id, originator_id, originator_version, topic, state")


class EventLog:
    """Reads and decodes the events table of ``store``."""

    def __init__(self, store: ProjectionStore) -> None:
        self.store = store
        self.mapper = store.app.mapper
        self.table = SQL("{}.{}").format(
            Identifier(store.schema), Identifier(store.recorder.events_table_name)
        )
        self._head = head_statement(store.schema, store.recorder.events_table_name)
        self._page = SQL(
            "SELECT {} FROM {} WHERE notification_id > %s AND notification_id <= %s"
            " ORDER BY notification_id LIMIT %s"
        ).format(_COLUMNS, self.table)
        self._first_after = SQL(
            "SELECT {} FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT 1"
        ).format(_COLUMNS, self.table)
        self._case_before = SQL(
            "SELECT {} FROM {} WHERE originator_id = %s AND notification_id < %s"
            " ORDER BY originator_version"
        ).format(_COLUMNS, self.table)

    def head(self, curs: Cursor[DictRow]) -> int:
        curs.execute(self._head)
        row = curs.fetchone()
        return int(row["head"]) if row else 0

    def page(self, curs: Cursor[DictRow], after: int, upto: int, limit: int) -> list[Stored]:
        """Up to ``limit`` events after position ``after``, up to ``upto``, in order."""
        curs.execute(self._page, (after, upto, limit), binary=True)
        rows = curs.fetchall()
        self.mapper.prefetch(row["state"] for row in rows)
        return [self._decode(row) for row in rows]

    def first_after(self, curs: Cursor[DictRow], position: int) -> Stored | None:
        """The oldest event after ``position``, if any."""
        curs.execute(self._first_after, (position,))
        row = curs.fetchone()
        if row is None:
            return None
        self.mapper.prefetch([row["state"]])
        return self._decode(row)

    def case_before(self, curs: Cursor[DictRow], case_id: UUID, position: int) -> list[Stored]:
        """One case's events before ``position``, in version order."""
        curs.execute(self._case_before, (case_id, position), binary=True)
        rows = curs.fetchall()
        self.mapper.prefetch(row["state"] for row in rows)
        return [self._decode(row) for row in rows]

    def cases(
        self, upto: int, first: UUID | None = None, stop: UUID | None = None
    ) -> Iterator[list[Stored]]:
        """Every case's events up to ``upto`` (ids in [first, stop)), case by case, in
        version order, streamed on a connection of its own (a server-side cursor)."""
        where = [SQL("notification_id <= %s")]
        params: list[Any] = [upto]
        if first is not None:
            where.append(SQL("originator_id >= %s"))
            params.append(first)
        if stop is not None:
            where.append(SQL("originator_id < %s"))
            params.append(stop)
        query = SQL("SELECT {} FROM {} WHERE {} ORDER BY originator_id, originator_version").format(
            _COLUMNS, self.table, SQL(" AND ").join(where)
        )
        with (
            self.store.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor(name="replay", row_factory=tuple_row) as cursor,
        ):
            cursor.execute(query, params, binary=True)
            current: list[Stored] = []
            while rows := cursor.fetchmany(_REPLAY_BATCH):
                self.mapper.prefetch(row[4] for row in rows)
                for position, case_id, version, topic, state in rows:
                    if current and current[0].case_id != case_id:
                        yield current
                        current = []
                    current.append(decode(self.mapper, position, case_id, version, topic, state))
            if current:
                yield current

    def _decode(self, row: DictRow) -> Stored:
        return decode(
            self.mapper,
            row["notification_id"],
            row["originator_id"],
            row["originator_version"],
            row["topic"],
            bytes(row["state"]),
        )

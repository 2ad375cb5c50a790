"""Keeps projections up to date with the event log, one transaction per page.

A projection's position (the last notification id it applied) lives in
``projection_positions`` and is updated in the same transaction as its view
rows, so a crash at any moment resumes without skipping or double-applying;
the position row is locked for the page, so two projector processes never
apply a page twice. The recorder's table lock makes insert order equal
commit order, so reading "after my position" never passes over a gap that
fills in later.

A page whose handler fails is re-applied event by event to find the culprit.
An error that comes from the event (anything the handler raises, a value the
database refuses: DataError, IntegrityError, a value too large for an index; a
stored event that does not even decode) dead-letters that event in
``projection_dead_letters`` and the projection goes on: one bad event never
stops a view. Any other database
error halts the projection at the event (shown in status, /readyz and
metrics; ``casetrack projections resume`` after the repair): a missing table
or privilege is no reason to dead-letter every event that follows. A lost
connection is neither: the page is retried.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID

import psycopg
import structlog
from eventsourcing.persistence import StoredEvent
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from domain.case import Case
from projections.tables import Row, Table, names

log = structlog.get_logger("casetrack.projections")


_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError)
# ProgramLimitExceeded (SQLSTATE class 54: a value too large for an index) is an
# OperationalError to psycopg, like a lost connection, but one event's value causes it.
_FROM_THE_EVENT = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded)


def from_the_event(error: Exception) -> bool:
    """Whether ``error`` comes from the event applied (dead-letter it and go on), not
    from the database (a lost connection, a missing table: halt or retry)."""
    return not isinstance(error, psycopg.Error) or isinstance(error, _FROM_THE_EVENT)


def unavailable(error: Exception) -> bool:
    """Whether ``error`` says the database is away for now: retry the page later."""
    return isinstance(error, _UNAVAILABLE) and not from_the_event(error)


_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def error_text(error: Exception) -> str:
    """What to store and show of an error: its kind and where it arose, never its
    message, which may quote the event's data (a name, a date of birth). A database
    error is named by its SQLSTATE; psycopg's own client-side texts are fixed ones."""
    if isinstance(error, psycopg.Error):
        if error.sqlstate:
            return f"{type(error).__name__} (SQLSTATE {error.sqlstate})"
        return _UNSTORABLE.sub("?", f"{type(error).__name__}: {error}")[:500]
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return type(error).__name__
    code = tb.tb_frame.f_code
    return f"{type(error).__name__} in {code.co_qualname} ({Path(code.co_filename).name})"


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


def decode(
    store: CaseStore, position: int, case_id: UUID, version: int, topic: str, state: bytes
) -> Positioned | Undecodable:
    try:
        event = store.app.mapper.to_domain_event(StoredEvent(case_id, version, topic, state))
    except Exception as e:
        return Undecodable(position, case_id, topic, e)
    return Positioned(position, case_id, event)  # type: ignore[arg-type]


class Replayer(Protocol):
    """Builds a projection's rows from scratch, one whole case at a time.

    A rebuild may run several replayers on disjoint sets of cases in worker
    processes (so they must pickle), then merge them with ``absorb``.
    """

    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        """Rows (table name, row) for one case, given all its events in order."""
        ...

    def finish(self) -> Iterable[tuple[str, Row]]:
        """Rows of tables that aggregate over cases, after the last case."""
        ...

    def absorb(self, other: Replayer) -> None:
        """Add what another replayer (of other cases, in a worker) gathered for ``finish``."""
        ...


class PerCaseReplayer:
    """A replayer whose rows each depend on one case only: nothing to finish or merge."""

    def finish(self) -> Iterable[tuple[str, Row]]:
        return ()

    def absorb(self, other: Replayer) -> None:
        pass


class Projection(Protocol):
    name: str
    tables: tuple[Table, ...]

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        """Apply a page of events to the tables named in ``tables``."""
        ...

    def replayer(self) -> Replayer: ...


POSITIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.projection_positions ("
    " name text PRIMARY KEY,"
    " position bigint NOT NULL DEFAULT 0,"
    " halted_at bigint,"
    " last_error text,"
    " last_error_at timestamptz,"
    " updated_at timestamptz NOT NULL DEFAULT now())"
)
DEAD_LETTERS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.projection_dead_letters ("
    " id bigserial PRIMARY KEY,"
    " projection text NOT NULL,"
    " position bigint NOT NULL,"
    " case_id uuid NOT NULL,"
    " event_type text NOT NULL,"
    " error text NOT NULL,"
    " recorded_at timestamptz NOT NULL DEFAULT now(),"
    " UNIQUE (projection, position))"
)


class PageCache:
    """The last pages read from the log, decoded, shared by projectors in one process.

    A page holds the events after a position, up to a bound, that were committed
    when it was read; the log is append-only and commits in position order, so a
    page read earlier is still a true prefix of what follows that position, and
    projectors that move together read and decode each page once.
    """

    def __init__(self, pages: int = 4) -> None:
        self.pages = pages
        self._cache: OrderedDict[tuple[int, int, int], list[Positioned]] = OrderedDict()

    def get(self, key: tuple[int, int, int]) -> list[Positioned] | None:
        return self._cache.get(key)

    def put(self, key: tuple[int, int, int], page: list[Positioned]) -> None:
        self._cache[key] = page
        while len(self._cache) > self.pages:
            self._cache.popitem(last=False)


class Projector:
    """Applies the log to one projection; ``suffix`` targets its shadow tables."""

    def __init__(
        self,
        store: CaseStore,
        projection: Projection,
        *,
        page_size: int = 5000,
        suffix: str = "",
        pages: PageCache | None = None,
    ) -> None:
        self.store = store
        self.projection = projection
        self.page_size = page_size
        self.pages = pages  # shared with other projectors in this process, if any
        self.schema = store.schema
        self.position_name = projection.name + suffix
        self.tables = names(projection.tables, self.schema, suffix)
        self._select = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {}.{} WHERE notification_id > %s AND notification_id <= %s"
            " ORDER BY notification_id LIMIT %s"
        ).format(Identifier(self.schema), Identifier(EVENTS_TABLE))

    def catch_up(self, upto: int | None = None) -> int:
        """Apply everything after the stored position (up to ``upto``); returns events applied.

        Stops early, without raising, when the projection is halted.
        """
        applied = 0
        while count := self.step(upto):
            applied += count
        return applied

    def step(self, upto: int | None = None) -> int:
        """Apply one page in its own transaction; returns events applied (0: caught up)."""
        with self.store.datastore.transaction(commit=True) as curs:
            return self.apply_pages(curs, upto, max_pages=1)

    def apply_pages(self, curs: Cursor[DictRow], upto: int | None, max_pages: int | None) -> int:
        """Apply pages inside the caller's transaction; returns events applied."""
        applied = 0
        pages = 0
        while max_pages is None or pages < max_pages:
            position, halted = self.lock_position(curs)
            if halted:
                return applied
            page = self._page(curs, position, upto or 2**62)
            if not page:
                return applied
            last = self._apply(curs, page)
            self._set_position(curs, last)
            applied += sum(1 for item in page if item.position <= last)  # less if it halted
            pages += 1
        return applied

    def position(self) -> int:
        with self.store.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT position FROM {}.projection_positions WHERE name = %s").format(
                    Identifier(self.schema)
                ),
                (self.position_name,),
            )
            row = curs.fetchone()
        return int(row["position"]) if row else 0

    # ---------------------------------------------------------------- internals

    def _page(
        self, curs: Cursor[DictRow], position: int, upto: int
    ) -> list[Positioned | Undecodable]:
        key = (position, upto, self.page_size)
        page = self.pages.get(key) if self.pages else None
        if page is None:
            curs.execute(self._select, key, binary=True)
            page = [
                decode(
                    self.store,
                    row["notification_id"],
                    row["originator_id"],
                    row["originator_version"],
                    row["topic"],
                    bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]
            if page and self.pages:
                self.pages.put(key, page)
        return page

    def _apply(self, curs: Cursor[DictRow], page: list[Positioned | Undecodable]) -> int:
        """Apply the page; on failure find the culprit. Returns the new position."""
        decoded = [item for item in page if isinstance(item, Positioned)]
        if len(decoded) == len(page):
            try:
                with curs.connection.transaction():  # a savepoint
                    self.projection.apply(curs, self.tables, decoded)
                return page[-1].position
            except Exception as e:
                if unavailable(e):
                    raise  # the database, not the handler: retry the page later
                log.warning("page failed, retrying event by event", projection=self.position_name)
        for item in page:
            if isinstance(item, Undecodable):
                dead_letter(curs, self.schema, self.position_name, item, item.error)
                continue
            try:
                with curs.connection.transaction():
                    self.projection.apply(curs, self.tables, [item])
            except Exception as e:
                if unavailable(e):
                    raise
                if not from_the_event(e):
                    self._halt(curs, item, e)
                    return item.position - 1
                dead_letter(curs, self.schema, self.position_name, item, e)
        return page[-1].position

    def _halt(self, curs: Cursor[DictRow], item: Positioned, error: Exception) -> None:
        log.error(
            "projection halted",
            projection=self.position_name,
            position=item.position,
            error=type(error).__name__,
        )
        curs.execute(
            SQL(
                "UPDATE {}.projection_positions SET halted_at = %s, last_error = %s,"
                " last_error_at = now() WHERE name = %s"
            ).format(Identifier(self.schema)),
            (item.position, error_text(error), self.position_name),
        )

    def lock_position(self, curs: Cursor[DictRow]) -> tuple[int, bool]:
        """Lock this projection's position row for the transaction: (position, halted)."""
        curs.execute(
            SQL(
                "INSERT INTO {}.projection_positions (name) VALUES (%s)"
                " ON CONFLICT (name) DO NOTHING"
            ).format(Identifier(self.schema)),
            (self.position_name,),
        )
        curs.execute(
            SQL(
                "SELECT position, halted_at FROM {}.projection_positions WHERE name = %s FOR UPDATE"
            ).format(Identifier(self.schema)),
            (self.position_name,),
        )
        row = curs.fetchone()
        assert row is not None
        return int(row["position"]), row["halted_at"] is not None

    def _set_position(self, curs: Cursor[DictRow], position: int) -> None:
        curs.execute(
            SQL(
                "UPDATE {}.projection_positions SET position = %s, updated_at = now()"
                " WHERE name = %s"
            ).format(Identifier(self.schema)),
            (position, self.position_name),
        )


def dead_letter(
    curs: Cursor[DictRow],
    schema: str,
    projection: str,
    item: Positioned | Undecodable,
    error: Exception,
) -> None:
    """Record that ``projection`` skipped the event at ``item`` because of ``error``."""
    text = error_text(error)
    event_type = _UNSTORABLE.sub(
        "?", item.event.event_type if isinstance(item, Positioned) else f"undecodable {item.topic}"
    )
    log.error(
        "projection handler failed",
        projection=projection,
        position=item.position,
        event_type=event_type,
        error=type(error).__name__,
    )
    curs.execute(
        SQL(
            "INSERT INTO {}.projection_dead_letters"
            " (projection, position, case_id, event_type, error) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (projection, position) DO UPDATE SET error = EXCLUDED.error,"
            " recorded_at = now()"
        ).format(Identifier(schema)),
        (
            projection,
            item.position,
            item.case_id,
            event_type,
            text,
        ),
    )
    curs.execute(
        SQL(
            "UPDATE {}.projection_positions SET last_error = %s, last_error_at = now()"
            " WHERE name = %s"
        ).format(Identifier(schema)),
        (text, projection),
    )


def resume(store: CaseStore, name: str) -> None:
    """Clear a halt: the projection retries from the event it stopped at."""
    with store.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL("UPDATE {}.projection_positions SET halted_at = NULL WHERE name = %s").format(
                Identifier(store.schema)
            ),
            (name,),
        )

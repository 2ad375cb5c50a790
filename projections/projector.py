"""Keeps projections up to date with the event log, one transaction per page.

A projection's position (the last notification id it applied) is updated in the
same transaction as its view rows, and locked for the page (projections/positions).

A page whose handler fails is re-applied event by event to find the culprit.
An error that comes from the event (anything the handler raises, a value the
database refuses: DataError, IntegrityError, a value too large for an index; a
stored event that does not even decode) dead-letters that event in
``projection_dead_letters`` and the projection goes on: one bad event never
stops a view. Any other database error halts the projection at the event (shown
in status, /readyz and metrics; ``casetrack projections resume`` after the
repair): a missing table or privilege is no reason to dead-letter every event
that follows. A lost connection is neither: the page is retried
(projections/failures).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import structlog
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import Composed

from projections.event_log import EventLog, Positioned, Stored, Undecodable
from projections.failures import error_text, from_the_event, printable, unavailable
from projections.ports import ProjectionStore
from projections.positions import Positions
from projections.tables import Row, Table, names

log = structlog.get_logger("casetrack.projections")


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
    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> tuple[Table, ...]: ...

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        """Apply a page of events to the tables named in ``tables``."""
        ...

    def replayer(self) -> Replayer: ...


@runtime_checkable
class StoreBound(Protocol):
    """A projection that needs something of its store beyond the cursor (case_parties:
    the blind-index key). Whatever applies or replays a projection takes ``for_store``
    of it first, so the projection cannot run without it."""

    def for_store(self, store: ProjectionStore) -> Projection: ...


def for_store(projection: Projection, store: ProjectionStore) -> Projection:
    """``projection`` with what it needs of ``store`` (itself, if it needs nothing)."""
    return projection.for_store(store) if isinstance(projection, StoreBound) else projection


class PageCache:
    """The last pages read from the log, decoded, shared by projectors in one process.

    A page holds the events after a position, up to a bound, that were committed
    when it was read; the log is append-only and commits in position order, so a
    page read earlier is still a true prefix of what follows that position, and
    projectors that move together read and decode each page once.
    """

    def __init__(self, pages: int = 4) -> None:
        self.pages = pages
        self._cache: OrderedDict[tuple[int, int, int], list[Stored]] = OrderedDict()

    def get(self, key: tuple[int, int, int]) -> list[Stored] | None:
        return self._cache.get(key)

    def put(self, key: tuple[int, int, int], page: list[Stored]) -> None:
        self._cache[key] = page
        while len(self._cache) > self.pages:
            self._cache.popitem(last=False)


class Projector:
    """Applies the log to one projection; ``suffix`` targets its shadow tables."""

    def __init__(
        self,
        store: ProjectionStore,
        projection: Projection,
        *,
        page_size: int = 5000,
        suffix: str = "",
        pages: PageCache | None = None,
    ) -> None:
        self.store = store
        self.projection = for_store(projection, store)
        self.page_size = page_size
        self.pages = pages  # shared with other projectors in this process, if any
        self.position_name = projection.name + suffix
        self.tables = names(projection.tables, store.schema, suffix)
        self.log = EventLog(store)
        self.positions = Positions(store.schema)

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
            self.positions.advance(curs, self.position_name, last)
            applied += sum(1 for item in page if item.position <= last)  # less if it halted
            pages += 1
        return applied

    def position(self) -> int:
        with self.store.datastore.transaction(commit=False) as curs:
            return self.positions.position(curs, self.position_name)

    def lock_position(self, curs: Cursor[DictRow]) -> tuple[int, bool]:
        """Lock this projection's position row for the transaction: (position, halted)."""
        return self.positions.lock(curs, self.position_name)

    # ---------------------------------------------------------------- internals

    def _page(self, curs: Cursor[DictRow], position: int, upto: int) -> list[Stored]:
        key = (position, upto, self.page_size)
        page = self.pages.get(key) if self.pages else None
        if page is None:
            page = self.log.page(curs, *key)
            if page and self.pages:
                self.pages.put(key, page)
        return page

    def _apply(self, curs: Cursor[DictRow], page: list[Stored]) -> int:
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
                dead_letter(curs, self.positions, self.position_name, item, item.error)
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
                dead_letter(curs, self.positions, self.position_name, item, e)
        return page[-1].position

    def _halt(self, curs: Cursor[DictRow], item: Positioned, error: Exception) -> None:
        log.error(
            "projection halted",
            projection=self.position_name,
            position=item.position,
            error=type(error).__name__,
        )
        self.positions.halt(curs, self.position_name, item.position, error_text(error))


def dead_letter(
    curs: Cursor[DictRow], positions: Positions, projection: str, item: Stored, error: Exception
) -> None:
    """Record that ``projection`` skipped the event at ``item`` because of ``error``."""
    event_type = printable(
        item.event.event_type if isinstance(item, Positioned) else f"undecodable {item.topic}"
    )
    log.error(
        "projection handler failed",
        projection=projection,
        position=item.position,
        event_type=event_type,
        error=type(error).__name__,
    )
    positions.dead_letter(
        curs, projection, item.position, item.case_id, event_type, error_text(error)
    )


def resume(store: ProjectionStore, name: str) -> None:
    """Clear a halt: the projection retries from the event it stopped at."""
    with store.datastore.transaction(commit=True) as curs:
        Positions(store.schema).resume(curs, name)

"""The notifications projection: each visible change of a file, as outbox rows for
everyone linked to it (projections/notify_outbox), in the same transaction as its
position.

Its view table (``notify_views``) is the status view of each case as of the last event
applied: what ``visible_change`` compares the next event's view with, for each role. It
can be rebuilt like any view; the outbox is not among its tables, so a rebuild keeps
it, and what the rebuild's catch-up applies again finds its rows already there (see
notify_outbox: ON CONFLICT DO NOTHING, recipients as linked when the event was recorded).
A rebuild replays the whole log like any view's (in parallel, bulk-copied), announcing
only what the live projection had not (``announcing_after`` its live position): the
replay stages the changes of the events after that position (``notify_staged``), and the
swap turns them into outbox rows (``release_staged``), in the transaction that moves the
position, with the same recipients and keys as the live projection's rows, so nothing is
announced twice and nothing after the live position goes unannounced. The live
``notify_staged`` is always empty: the live projection writes its rows straight to the
outbox.

A case whose view is missing here (the table was refilled from the log, or this view
started at the log's head: ``db init`` never announces the past) has its view folded
from its earlier events in the log when its next event comes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed
from psycopg.types.json import Jsonb

from domain.case import Case
from projections import case_status
from projections.event_log import EventLog, Positioned
from projections.notify_changes import visible_change
from projections.notify_outbox import Outbox, Pending
from projections.ports import ProjectionStore
from projections.projector import PerCaseReplayer
from projections.roles import ROLES
from projections.tables import Row, Table

NAME = "notifications"
TABLE = Table(
    name="notify_views",
    columns=(("case_id", "uuid NOT NULL"), ("view", "jsonb NOT NULL")),
    key=("case_id",),
)


# The changes a rebuild's replay found after the live position, for the swap to announce.
STAGED = Table(
    name="notify_staged",
    columns=(
        ("case_id", "uuid NOT NULL"),
        ("version", "bigint NOT NULL"),
        ("role", "text NOT NULL"),
        ("application_number", "text NOT NULL"),
        ("language", "text NOT NULL"),
        ("change", "jsonb NOT NULL"),
        ("recorded_at", "timestamptz NOT NULL"),
    ),
    key=("case_id", "version", "role"),
    staging=True,
)


class NotifyReplayer(PerCaseReplayer):
    """Each case's view; and, for the events after ``announced`` on a case in
    ``linked`` (only they have recipients), the changes to stage."""

    def __init__(self, announced: int | None = None, linked: frozenset[UUID] = frozenset()) -> None:
        self.announced = announced
        self.linked = linked

    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        announce = self.announced is not None and events[0].case_id in self.linked
        view: dict[str, Any] | None = None
        for p in events:
            before, view = view, case_status.evolve(view, p.event)
            if announce and p.position > (self.announced or 0):
                for c in _changes(p, before, view):
                    row = (c.case_id, c.version, c.role, c.application_number, c.language,
                           Jsonb(c.change), c.recorded_at)  # fmt: skip
                    yield STAGED.name, row
        if view is not None:
            yield TABLE.name, (events[0].case_id, Jsonb(view))


class NotificationsProjection:
    """Needs its store (the schema of the outbox, the log for a missing view)."""

    name = NAME
    tables: tuple[Table, ...] = (TABLE, STAGED)

    def __init__(self, store: ProjectionStore | None = None, announced: int | None = None) -> None:
        self._store = store
        self._announced = announced
        self._linked: frozenset[UUID] | None = None

    def for_store(self, store: ProjectionStore) -> NotificationsProjection:
        return NotificationsProjection(store, self._announced)

    def announcing_after(self, position: int) -> NotificationsProjection:
        """This projection for a rebuild: its replay stages the changes of the events
        after ``position`` (the live one; without it, a replay announces nothing)."""
        return NotificationsProjection(self._store, position)

    def replayer(self) -> NotifyReplayer:
        if self._announced is None:
            return NotifyReplayer()
        if self._linked is None:
            # The cases anyone is linked to, once per process: a link made after this
            # (after the rebuild began) is younger than every event replayed, so it
            # would have no recipients among them anyway.
            if self._store is None:
                raise RuntimeError("notifications replays with its store: take for_store first")
            with self._store.datastore.transaction(commit=False) as curs:
                self._linked = frozenset(Outbox(self._store.schema).linked_cases(curs))
        return NotifyReplayer(self._announced, self._linked)

    def release_staged(self, curs: Cursor[DictRow], tables: Mapping[str, Composed]) -> None:
        """The staged changes as outbox rows (in the rebuild's swap, before the rename),
        then none staged."""
        if self._store is None:
            raise RuntimeError("notifications runs with its store: take for_store first")
        Outbox(self._store.schema).add_staged(curs, tables[STAGED.name])
        curs.execute(SQL("TRUNCATE {}").format(tables[STAGED.name]))

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        if self._store is None:
            raise RuntimeError("notifications runs with its store: take for_store first")
        outbox = Outbox(self._store.schema)
        table = tables[TABLE.name]
        ids = list({p.case_id for p in page})
        curs.execute(
            SQL("SELECT case_id, view FROM {} WHERE case_id = ANY(%s)").format(table), (ids,)
        )
        views: dict[UUID, dict[str, Any] | None] = {r["case_id"]: r["view"] for r in curs}
        linked = outbox.linked(curs, ids)
        pending: list[Pending] = []
        for p in page:
            if p.case_id not in views and not isinstance(p.event, Case.Received):
                views[p.case_id] = self._fold_before(curs, p)
            before = views.get(p.case_id)
            after = case_status.evolve(before, p.event)
            if p.case_id in linked:
                pending += _changes(p, before, after)
            views[p.case_id] = after
        curs.executemany(
            SQL(
                "INSERT INTO {} (case_id, view) VALUES (%s, %s)"
                " ON CONFLICT (case_id) DO UPDATE SET view = EXCLUDED.view"
            ).format(table),
            [(cid, Jsonb(view)) for cid, view in views.items() if view is not None],
        )
        outbox.add(curs, pending)

    def _fold_before(self, curs: Cursor[DictRow], p: Positioned) -> dict[str, Any] | None:
        assert self._store is not None
        earlier = EventLog(self._store).case_before(curs, p.case_id, p.position)
        return case_status.fold([e.event for e in earlier if isinstance(e, Positioned)])


def _changes(p: Positioned, before: dict[str, Any] | None, after: dict[str, Any]) -> list[Pending]:
    found = []
    for role in ROLES:
        change = visible_change(before, after, p.event, role)
        if change is not None:
            found.append(
                Pending(
                    case_id=p.case_id,
                    version=p.event.originator_version,
                    role=role,
                    application_number=after["application_number"],
                    language=after["preferred_language"],
                    change=change,
                    recorded_at=p.event.timestamp,
                )
            )
    return found

"""The notifications projection: each visible change of a file, as outbox rows for
everyone linked to it (projections/notify_outbox), in the same transaction as its
position.

Its view table (``notify_views``) is the status view of each case as of the last event
applied: what ``visible_change`` compares the next event's view with, for each role. It
can be rebuilt like any view; the outbox is not among its tables, so a rebuild keeps
it, and what the rebuild's catch-up applies again finds its rows already there (see
notify_outbox: ON CONFLICT DO NOTHING, recipients as linked when the event was recorded).
A rebuild replays this view only up to the live position (``replay_upto_live``): the
events after it are applied by the catch-up, which writes their outbox rows, so none
goes unannounced whatever the live projection had reached.

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


class NotifyViewsReplayer(PerCaseReplayer):
    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        view = case_status.fold([p.event for p in events])
        if view is not None:
            yield TABLE.name, (events[0].case_id, Jsonb(view))


class NotificationsProjection:
    """Needs its store (the schema of the outbox, the log for a missing view)."""

    name = NAME
    tables: tuple[Table, ...] = (TABLE,)
    replay_upto_live = True  # projections/rebuild: see the module's docstring

    def __init__(self, store: ProjectionStore | None = None) -> None:
        self._store = store

    def for_store(self, store: ProjectionStore) -> NotificationsProjection:
        return NotificationsProjection(store)

    def replayer(self) -> NotifyViewsReplayer:
        return NotifyViewsReplayer()

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

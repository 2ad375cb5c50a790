"""The case_status table: one row per case, the view as JSON."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg.types.json import Jsonb

from projections import case_status
from projections.event_log import Positioned
from projections.projector import PerCaseReplayer
from projections.tables import Row, Table

TABLE = Table(
    name="case_status",
    columns=(
        ("case_id", "uuid NOT NULL"),
        ("application_number", "text NOT NULL"),
        ("view", "jsonb NOT NULL"),
        ("version", "bigint NOT NULL"),
        ("position", "bigint NOT NULL"),
    ),
    key=("case_id",),
    indexes=(("application_number",),),
)


def _row(case_id: Any, view: dict[str, Any], position: int) -> Row:
    return (case_id, view["application_number"], Jsonb(view), view["version"], position)


class CaseStatusReplayer(PerCaseReplayer):
    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        view = case_status.fold([p.event for p in events])
        if view is not None:
            yield TABLE.name, _row(events[0].case_id, view, events[-1].position)


class CaseStatusProjection:
    name = "case_status"
    tables: tuple[Table, ...] = (TABLE,)

    def replayer(self) -> CaseStatusReplayer:
        return CaseStatusReplayer()

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        table = tables[TABLE.name]
        ids = list({p.case_id for p in page})
        curs.execute(
            SQL("SELECT case_id, view FROM {} WHERE case_id = ANY(%b)").format(table), (ids,)
        )
        views: dict[Any, dict[str, Any] | None] = {r["case_id"]: r["view"] for r in curs}
        last_position: dict[Any, int] = {}
        for p in page:
            views[p.case_id] = case_status.evolve(views.get(p.case_id), p.event)
            last_position[p.case_id] = p.position
        rows = [
            _row(case_id, view, last_position[case_id])
            for case_id, view in views.items()
            if view is not None
        ]
        curs.executemany(
            SQL(
                "INSERT INTO {} (case_id, application_number, view, version, position)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (case_id) DO UPDATE SET"
                " view = EXCLUDED.view, version = EXCLUDED.version, position = EXCLUDED.position"
            ).format(table),
            rows,
        )


def read(curs: Cursor[DictRow], schema: str, application_number: str) -> dict[str, Any] | None:
    curs.execute(
        SQL("SELECT view FROM {}.case_status WHERE application_number = %s").format(
            Identifier(schema)
        ),
        (application_number,),
    )
    row = curs.fetchone()
    return row["view"] if row else None


def closed_before(curs: Cursor[DictRow], schema: str, cutoff: date) -> list[str]:
    """The files closed (decided or withdrawn) before ``cutoff``: what retention erases."""
    curs.execute(
        SQL(
            "SELECT application_number FROM {}.case_status WHERE view->>'status' = 'closed'"
            " AND (view->>'decided_on')::date < %s ORDER BY application_number"
        ).format(Identifier(schema)),
        (cutoff,),
    )
    return [row["application_number"] for row in curs.fetchall()]

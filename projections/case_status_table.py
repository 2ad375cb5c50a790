"""The case_status table: one row per case, the view as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier
from psycopg.types.json import Jsonb

from projections import case_status
from projections.projector import Positioned


class CaseStatusProjection:
    name = "case_status"

    def ddl(self, schema: str) -> list[SQL]:
        return [
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.case_status ("
                " case_id uuid PRIMARY KEY,"
                " application_number text NOT NULL UNIQUE,"
                " view jsonb NOT NULL,"
                " version bigint NOT NULL,"
                " position bigint NOT NULL)"
            ).format(schema=Identifier(schema))
        ]

    def apply(self, curs: Cursor[DictRow], schema: str, events: Sequence[Positioned]) -> None:
        ids = list({p.case_id for p in events})
        curs.execute(
            SQL("SELECT case_id, view FROM {}.case_status WHERE case_id = ANY(%s)").format(
                Identifier(schema)
            ),
            (ids,),
        )
        views: dict[Any, dict[str, Any] | None] = {r["case_id"]: r["view"] for r in curs}
        last_position: dict[Any, int] = {}
        for p in events:
            views[p.case_id] = case_status.evolve(views.get(p.case_id), p.event)
            last_position[p.case_id] = p.position
        rows = []
        for case_id, view in views.items():
            if case_id in last_position and view is not None:
                rows.append(
                    (
                        case_id,
                        view["application_number"],
                        Jsonb(view),
                        view["version"],
                        last_position[case_id],
                    )
                )
        curs.executemany(
            SQL(
                "INSERT INTO {}.case_status (case_id, application_number, view, version, position)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (case_id) DO UPDATE SET"
                " view = EXCLUDED.view, version = EXCLUDED.version, position = EXCLUDED.position"
            ).format(Identifier(schema)),
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

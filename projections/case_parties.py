"""The case_parties table: who is on each file, to match tracker registrations.

One row per (case, role) from ``application.received`` (parties never change
afterwards). It holds personal data (UCI, family name, date of birth,
email) because registration must compare against it; given names are not
kept, no registration asks for them. Nothing here is ever logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from psycopg import AsyncCursor, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed

from domain.accounts import FileParty
from domain.case import Case
from projections.event_log import Positioned
from projections.projector import PerCaseReplayer
from projections.tables import Row, Table

TABLE = Table(
    name="case_parties",
    columns=(
        ("case_id", "uuid NOT NULL"),
        ("role", "text NOT NULL"),
        ("application_number", "text NOT NULL"),
        ("preferred_language", "text NOT NULL"),
        ("uci", "text"),
        ("family_name", "text"),
        ("date_of_birth", "date"),
        ("email", "text"),
        ("name", "text"),
        ("membership_id", "text"),
    ),
    key=("case_id", "role"),
    indexes=(("application_number",),),
)


def _rows(events: Iterable[Positioned]) -> list[Row]:
    rows: list[Row] = []
    for p in events:
        event = p.event
        if not isinstance(event, Case.Received):
            continue
        common = (event.application_number, event.preferred_language)
        for role in ("principal_applicant", "sponsor"):
            person: dict[str, Any] = getattr(event, role)
            rows.append(
                (
                    p.case_id,
                    role,
                    *common,
                    person["uci"],
                    person["family_name"],
                    date.fromisoformat(person["date_of_birth"]),
                    person.get("email"),
                    None,
                    None,
                )
            )
        rep = event.representative
        if rep is not None:
            rows.append(
                (
                    p.case_id,
                    "representative",
                    *common,
                    None,
                    None,
                    None,
                    rep["email"],
                    rep["name"],
                    rep.get("membership_id"),
                )
            )
    return rows


class CasePartiesReplayer(PerCaseReplayer):
    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        return ((TABLE.name, row) for row in _rows(events[:1]))


class CasePartiesProjection:
    name = "case_parties"
    tables: tuple[Table, ...] = (TABLE,)

    def replayer(self) -> CasePartiesReplayer:
        return CasePartiesReplayer()

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        TABLE.insert_new(curs, tables[TABLE.name], _rows(page))


_SELECT = (
    "SELECT role, preferred_language, uci, family_name, date_of_birth, email, name,"
    " membership_id FROM {} WHERE application_number = %s"
)


async def read(curs: AsyncCursor[Any], schema: str, application_number: str) -> list[FileParty]:
    """The parties of a file (empty when there is no such file)."""
    await curs.execute(SQL(_SELECT).format(TABLE.ident(schema)), (application_number,))
    return [FileParty(*row) for row in await curs.fetchall()]

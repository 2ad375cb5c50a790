"""The case_history table: one row per shown event, the tracker's dated history.

Rows are keyed by (case_id, version), so re-applying a page after a crash
inserts nothing twice (ON CONFLICT DO NOTHING); rows never change once written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from operator import itemgetter
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from projections import timeline
from projections.event_log import Positioned
from projections.projector import PerCaseReplayer
from projections.tables import Row, Table

TABLE = Table(
    name="case_history",
    columns=(
        ("case_id", "uuid NOT NULL"),
        ("version", "bigint NOT NULL"),
        ("event_type", "text NOT NULL"),
        ("title_en", "text NOT NULL"),
        ("title_fr", "text NOT NULL"),
        ("text_en", "text NOT NULL"),
        ("text_fr", "text NOT NULL"),
        ("occurred_at", "timestamptz NOT NULL"),
        ("recorded_at", "timestamptz NOT NULL"),
    ),
    key=("case_id", "version"),
)


_LEADING = itemgetter(*TABLE.column_names[:-2])  # every column but the two timestamps


def _rows(events: Iterable[Positioned]) -> list[Row]:
    """Rows of the shown events; timestamps in UTC, as the rebuild's checksum expects."""
    rows = []
    for p in events:
        line = timeline.entry(p.event)
        if line is not None:
            occurred, recorded = line["occurred_at"], line["recorded_at"]
            rows.append((*_LEADING(line), occurred.astimezone(UTC), recorded.astimezone(UTC)))
    return rows


class CaseHistoryReplayer(PerCaseReplayer):
    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        return ((TABLE.name, row) for row in _rows(events))


class CaseHistoryProjection:
    name = "case_history"
    tables: tuple[Table, ...] = (TABLE,)

    def replayer(self) -> CaseHistoryReplayer:
        return CaseHistoryReplayer()

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        TABLE.insert_new(curs, tables[TABLE.name], _rows(page))


def read(curs: Cursor[DictRow], schema: str, case_id: UUID) -> list[dict[str, Any]]:
    """A case's history, oldest first."""
    curs.execute(
        SQL("SELECT {} FROM {} WHERE case_id = %s ORDER BY version").format(
            SQL(", ").join(map(Identifier, TABLE.column_names)), TABLE.ident(schema)
        ),
        (case_id,),
    )
    return [dict(row) for row in curs.fetchall()]

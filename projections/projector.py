"""Catches projections up with the event log, one transaction per page.

Each projection's position (the last notification id it applied) is stored in
``projection_positions`` and updated in the same transaction as its view rows,
so a crash at any moment resumes without skipping or double-applying. The
position row is locked for the batch: two projectors never apply one page twice.
The recorder's table lock makes insert order equal commit order, so reading
"after my position" never passes over a gap that fills in later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from domain.case import Case


@dataclass(frozen=True)
class Positioned:
    position: int
    case_id: UUID
    event: Case.Event


class Projection(Protocol):
    name: str

    def ddl(self, schema: str) -> list[SQL]: ...

    def apply(self, curs: Cursor[DictRow], schema: str, events: Sequence[Positioned]) -> None:
        """Apply one page of events inside the projector's transaction."""


POSITIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.projection_positions ("
    " name text PRIMARY KEY, position bigint NOT NULL DEFAULT 0,"
    " updated_at timestamptz NOT NULL DEFAULT now())"
)


class Projector:
    def __init__(self, store: CaseStore, projection: Projection, page_size: int = 5000) -> None:
        self.store = store
        self.projection = projection
        self.page_size = page_size
        self.schema = store.schema
        self._mapper: Mapper[UUID] = store.app.mapper
        self._select = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {}.{} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(Identifier(self.schema), Identifier(EVENTS_TABLE))

    def catch_up(self) -> int:
        """Apply everything after the stored position; returns events applied."""
        applied = 0
        while True:
            count = self._apply_page()
            applied += count
            if count < self.page_size:
                return applied

    def position(self) -> int:
        with self.store.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT position FROM {}.projection_positions WHERE name = %s").format(
                    Identifier(self.schema)
                ),
                (self.projection.name,),
            )
            row = curs.fetchone()
        return int(row["position"]) if row else 0

    def _apply_page(self) -> int:
        with self.store.datastore.transaction(commit=True) as curs:
            position = self._lock_position(curs)
            curs.execute(self._select, (position, self.page_size))
            rows = curs.fetchall()
            if not rows:
                return 0
            page = [
                Positioned(
                    position=row["notification_id"],
                    case_id=row["originator_id"],
                    event=self._mapper.to_domain_event(  # type: ignore[arg-type]
                        StoredEvent(
                            originator_id=row["originator_id"],
                            originator_version=row["originator_version"],
                            topic=row["topic"],
                            state=bytes(row["state"]),
                        )
                    ),
                )
                for row in rows
            ]
            self.projection.apply(curs, self.schema, page)
            curs.execute(
                SQL(
                    "UPDATE {}.projection_positions SET position = %s, updated_at = now()"
                    " WHERE name = %s"
                ).format(Identifier(self.schema)),
                (page[-1].position, self.projection.name),
            )
            return len(page)

    def _lock_position(self, curs: Cursor[DictRow]) -> int:
        curs.execute(
            SQL(
                "INSERT INTO {}.projection_positions (name) VALUES (%s)"
                " ON CONFLICT (name) DO NOTHING"
            ).format(Identifier(self.schema)),
            (self.projection.name,),
        )
        curs.execute(
            SQL("SELECT position FROM {}.projection_positions WHERE name = %s FOR UPDATE").format(
                Identifier(self.schema)
            ),
            (self.projection.name,),
        )
        row = curs.fetchone()
        assert row is not None
        return int(row["position"])

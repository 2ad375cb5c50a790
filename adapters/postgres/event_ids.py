"""The event_ids table: which case each event_id belongs to.

An event_id names one event of one case, so the writer rejects its reuse on another
case; rows go in with the events (``copy``, called by the recorder), and the primary
key settles two writers racing (the second gets an IntegrityError: a conflict).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from adapters.postgres.unavailable import raises_store_unavailable

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.event_ids ("
    " event_id uuid PRIMARY KEY,"
    " case_id uuid NOT NULL)"
)


class EventIds:
    """The event_ids of one schema."""

    def __init__(self, datastore: PostgresDatastore, schema: str) -> None:
        self.datastore = datastore
        table = SQL("{}.event_ids").format(Identifier(schema))
        self._copy = SQL("COPY {} (event_id, case_id) FROM STDIN (FORMAT BINARY)").format(table)
        self._owners = SQL("SELECT event_id, case_id FROM {} WHERE event_id = ANY(%b)").format(
            table
        )

    def copy(self, curs: Cursor[DictRow], rows: Sequence[tuple[UUID, UUID]]) -> None:
        """(event_id, case_id) rows, in the caller's transaction (the events')."""
        with curs.copy(self._copy) as copy:
            copy.set_types(["uuid", "uuid"])
            for row in rows:
                copy.write_row(row)

    @raises_store_unavailable
    def owners(self, event_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        """event_id -> the case that holds it, for those of ``event_ids`` already stored."""
        if not event_ids:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._owners, (list(event_ids),))
            return {row["event_id"]: row["case_id"] for row in curs.fetchall()}

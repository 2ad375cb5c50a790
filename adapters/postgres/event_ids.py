"""The event_ids table: which case each event_id belongs to.

An event_id names one event of one case, so the writer rejects its reuse on another
case; rows go in with the events (``copy``, called by the recorder), and the primary
key settles two writers racing (the second gets an IntegrityError: a conflict).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast
from uuid import UUID

import orjson
import psycopg
import structlog
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from adapters.postgres.unavailable import raises_store_unavailable

log = structlog.get_logger(__name__)

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


def backfill(conn: psycopg.Connection[tuple[object, ...]], schema: str, events_table: str) -> None:
    """Register the event_id of every stored event that decodes. Read here, not cast in
    SQL: one corrupt row would fail the cast, and with it every later ``db init``,
    its bytes quoted in the error. Such a row holds no readable event_id to protect."""
    insert = SQL(
        "INSERT INTO {}.event_ids (event_id, case_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
    ).format(Identifier(schema))
    skipped = 0
    with conn.cursor(name="event_ids_backfill") as rows:
        rows.itersize = 10_000
        rows.execute(
            SQL("SELECT originator_id, state FROM {}.{}").format(
                Identifier(schema), Identifier(events_table)
            )
        )
        while batch := rows.fetchmany(10_000):
            found = []
            for case_id, state in batch:
                try:
                    event_id = UUID(orjson.loads(bytes(cast(bytes, state)))["event_id"]["_data_"])
                except Exception:
                    skipped += 1
                    continue
                found.append((event_id, case_id))
            with conn.cursor() as write:
                write.executemany(insert, found)
    if skipped:
        log.warning("event_ids backfill passed over stored events that do not decode", rows=skipped)

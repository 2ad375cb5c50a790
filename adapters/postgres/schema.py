"""`casetrack db init`: create every table once, safely from several processes.

Workers never create tables (CREATE_TABLE is off); this runs under a
session advisory lock so concurrent inits queue instead of racing.
"""

from __future__ import annotations

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from adapters.postgres import (
    accounts_store,
    auditors_store,
    checkpoints,
    consumer_offsets,
    data_keys,
    dead_letters,
    event_hashes,
    event_ids,
    log_epochs,
    merkle_nodes,
    webhooks_store,
)
from adapters.postgres.event_store import EVENTS_TABLE, CaseEvents, CaseRecorder, postgres_env
from adapters.postgres.rate_limits import RATE_LIMITS_DDL
from projections import notifications, notify_outbox, positions
from projections.event_log import head_statement
from projections.projector import Projection
from projections.registry import all_projections

log = structlog.get_logger(__name__)

_LOCK_KEY = 0x43415345  # "CASE"


def init_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
            app = CaseEvents(env=postgres_env(url, schema))
            try:
                recorder = app.recorder
                assert isinstance(recorder, CaseRecorder)
                recorder.create_table()
            finally:
                app.close()
            with conn.transaction():
                had_event_ids = conn.execute(
                    "SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.event_ids",)
                ).fetchone()
                for ddl in (
                    event_ids.DDL,
                    *data_keys.DDL,
                    event_hashes.DDL,
                    event_hashes.BACKFILL_DONE_DDL,
                    merkle_nodes.DDL,
                    checkpoints.DDL,
                    checkpoints.RETIRED_DDL,
                    log_epochs.DDL,
                    dead_letters.DDL,
                    dead_letters.PUBLISH_ERROR,
                    dead_letters.RAW_DROPPED,
                    dead_letters.HEADERS,
                    consumer_offsets.DDL,
                    consumer_offsets.TOPIC_ID,
                    *positions.DDL,
                    *accounts_store.DDL,
                    RATE_LIMITS_DDL,
                    *auditors_store.DDL,
                    *webhooks_store.DDL,
                    *notify_outbox.DDL,
                ):
                    conn.execute(SQL(ddl).format(schema=Identifier(schema)))
                dead_letters.migrate(conn, schema)
                accounts_store.migrate(conn, schema)
                if not (had_event_ids and had_event_ids[0]):  # a log from before the table
                    event_ids.backfill(conn, schema, EVENTS_TABLE)
                for projection in all_projections().values():
                    _create_or_reset_view(conn, schema, projection)
                _notifications_from_head(conn, schema)
            # A log from before event_hashes, or an init that was interrupted: batches
            # that each commit, so the next init resumes where this one stopped.
            event_hashes.EventHashes(schema, EVENTS_TABLE).backfill(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _create_or_reset_view(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, projection: Projection
) -> None:
    """Create a view's tables; if a release changed their columns, drop them and
    rewind the view's position, so the projector refills it from the log. Views
    are derived data: the log is the only thing that must survive a migration. A
    staging table (empty outside a rebuild) is only recreated: no reason to refill."""
    found: dict[str, tuple[str, ...]] = {}
    for table in projection.tables:
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table.name),
        ).fetchall()
        if columns:
            found[table.name] = tuple(str(c[0]) for c in columns)
    for table in projection.tables:
        if table.staging and found.get(table.name, table.column_names) != table.column_names:
            conn.execute(SQL("DROP TABLE {}").format(table.ident(schema)))
            del found[table.name]
    kept = [t for t in projection.tables if not t.staging]
    if any(t.name in found for t in kept) and any(
        found.get(t.name) != t.column_names for t in kept
    ):
        log.warning("view layout changed: refilling it from the log", projection=projection.name)
        for table in projection.tables:
            conn.execute(SQL("DROP TABLE IF EXISTS {}").format(table.ident(schema)))
        with conn.cursor() as curs:
            positions.Positions(schema).forget(curs, projection.name)
        found = {}
    for table in projection.tables:
        if table.name not in found:
            for statement in table.create(schema):
                conn.execute(statement)


def _notifications_from_head(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> None:
    """A notifications projection without a position (a new install, a log from before
    notifications, a view whose layout changed) starts at the log's head: the past is
    never announced (docs/notifications.md)."""
    with conn.cursor(row_factory=dict_row) as curs:
        table = positions.Positions(schema)
        curs.execute(
            SQL("SELECT 1 FROM {}.projection_positions WHERE name = %s").format(Identifier(schema)),
            (notifications.NAME,),
        )
        if curs.fetchone() is None:
            curs.execute(head_statement(schema, EVENTS_TABLE))
            row = curs.fetchone()
            table.start(curs, notifications.NAME, int(row["head"]) if row else 0)


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))

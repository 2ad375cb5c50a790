"""The dead_letters table: every statement on it, from ``db init`` to the CLI.

Rows are written in the events' transaction (``insert``, called by the recorder),
so a crash never keeps a batch's events without its dead letters or the other way
round. Kafka dead letters are also the outbox of the dead-letter topic
(``claim_unpublished``). ``position`` says where the message was: a file's line
number, or a Kafka offset (then ``topic`` and ``partition`` are set too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from adapters.postgres.unavailable import raises_store_unavailable, store_unavailable
from consumers.ports import DeadLetter, PendingDeadLetter, RetrySource

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.dead_letters ("
    " id bigserial PRIMARY KEY,"
    " origin text NOT NULL,"
    " position bigint,"
    " raw bytea NOT NULL,"
    " raw_sha256 bytea NOT NULL,"
    " error_kind text NOT NULL,"
    " reason text NOT NULL,"
    " rule text,"
    " field text,"
    " application_number text,"
    " event_id uuid,"
    " topic text,"
    " partition integer,"
    " key bytea,"
    " published_at timestamptz,"
    " publish_error text,"
    " retried_at timestamptz,"
    " recorded_at timestamptz NOT NULL DEFAULT now(),"
    " UNIQUE NULLS NOT DISTINCT (origin, position, raw_sha256))"
)

# Why the dead-letter topic got a pointer instead of the message (added after the table).
PUBLISH_ERROR = "ALTER TABLE {schema}.dead_letters ADD COLUMN IF NOT EXISTS publish_error text"
# When the raw input was dropped (it can hold personal data: kept for a bounded time only,
# and dropped at once when a person on it is erased); the row, its reason and checksum stay.
RAW_DROPPED = (
    "ALTER TABLE {schema}.dead_letters ADD COLUMN IF NOT EXISTS raw_dropped_at timestamptz"
)

# ``position`` was called ``line_number`` before Kafka offsets were stored in it too.
_OLD_NAMES = (
    "SELECT"
    " EXISTS (SELECT FROM information_schema.columns WHERE table_schema = %(schema)s"
    " AND table_name = 'dead_letters' AND column_name = 'line_number'),"
    " EXISTS (SELECT FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
    " WHERE n.nspname = %(schema)s"
    " AND c.conname = 'dead_letters_origin_line_number_raw_sha256_key')"
)
_RENAME_COLUMN = "ALTER TABLE {schema}.dead_letters RENAME COLUMN line_number TO position"
_RENAME_CONSTRAINT = (
    "ALTER TABLE {schema}.dead_letters RENAME CONSTRAINT"
    " dead_letters_origin_line_number_raw_sha256_key TO dead_letters_origin_position_raw_sha256_key"
)


def migrate(conn: Connection[Any], schema: str) -> None:
    """Bring an older schema's table to this version (inside db init's transaction)."""
    row = conn.execute(_OLD_NAMES, {"schema": schema}).fetchone()
    column, constraint = row if row else (False, False)
    for needed, statement in ((column, _RENAME_COLUMN), (constraint, _RENAME_CONSTRAINT)):
        if needed:
            conn.execute(SQL(statement).format(schema=Identifier(schema)))


class RawInputDropped(ValueError):
    """A retry of a dead letter whose raw input was dropped (retention or erasure)."""

    def __init__(self, dead_letter_id: int) -> None:
        super().__init__(
            f"dead letter {dead_letter_id} has no raw input any more: it was dropped (it may"
            " hold personal data, and is kept for a bounded time only); feed the event in again"
            " from its producer"
        )


class DeadLetters:
    """The dead letters of one schema. Methods that open their own transaction raise
    StoreUnavailable when the database cannot be reached."""

    def __init__(self, datastore: PostgresDatastore, schema: str) -> None:
        self.datastore = datastore
        table = SQL("{}.dead_letters").format(Identifier(schema))
        self._insert = SQL(
            "INSERT INTO {} (origin, position, raw, raw_sha256,"
            " error_kind, reason, rule, field, application_number, event_id,"
            " topic, partition, key, raw_dropped_at)"
            " VALUES (%s, %s, %s, sha256(%s), %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " CASE WHEN %s THEN now() END)"
            " ON CONFLICT (origin, position, raw_sha256) DO NOTHING"
        ).format(table)
        self._judged = SQL(
            "SELECT position, raw_sha256 FROM {} WHERE origin = %s AND position = ANY(%b)"
        ).format(table)
        self._claim = SQL(
            "SELECT id, raw, key, error_kind, reason, rule, field, topic, partition, position"
            " FROM {} WHERE published_at IS NULL AND topic = %s"
            " AND origin LIKE 'kafka:%%' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
        ).format(table)
        self._mark = SQL(
            "UPDATE {} SET published_at = now(), publish_error = %s WHERE id = %s"
        ).format(table)
        self._unpublished = SQL(
            "SELECT count(*) AS n FROM {}"
            " WHERE published_at IS NULL AND topic = %s AND origin LIKE 'kafka:%%'"
        ).format(table)
        self._latest = SQL(
            "SELECT id, origin, position, topic, error_kind, rule, field, reason, recorded_at"
            " FROM {} ORDER BY id DESC LIMIT %s"
        ).format(table)
        self._one = SQL("SELECT * FROM {} WHERE id = %s").format(table)
        self._retry_source = SQL(
            "SELECT position, raw, topic, partition, key, raw_dropped_at FROM {} WHERE id = %s"
        ).format(table)
        self._mark_retried = SQL("UPDATE {} SET retried_at = now() WHERE id = %s").format(table)
        self._drop_mentioning = SQL(
            "UPDATE {} SET raw = ''::bytea, raw_dropped_at = now() WHERE raw_dropped_at IS NULL"
            " AND (application_number = ANY(%b)"
            " OR EXISTS (SELECT FROM unnest(%b::bytea[]) v WHERE position(v IN raw) > 0))"
        ).format(table)
        self._drop_older = SQL(
            "UPDATE {} SET raw = ''::bytea, raw_dropped_at = now() WHERE raw_dropped_at IS NULL"
            " AND recorded_at < now() - %s"
        ).format(table)
        self._last_of_origin = SQL(
            "SELECT error_kind, reason FROM {} WHERE origin = %s ORDER BY id DESC LIMIT 1"
        ).format(table)

    # ------------------------------------------------------------ the write side

    def insert(self, curs: Cursor[DictRow], dead_letters: Sequence[DeadLetter]) -> None:
        """In the caller's transaction (the events'); a row already stored is left alone."""
        curs.executemany(
            self._insert,
            [
                (
                    d.origin,
                    d.position,
                    b"" if d.raw_dropped else d.raw,
                    d.raw,
                    d.error_kind,
                    d.reason,
                    d.rule,
                    d.field,
                    d.application_number,
                    d.event_id,
                    d.topic,
                    d.partition,
                    d.key,
                    d.raw_dropped,
                )
                for d in dead_letters
            ],
        )

    @raises_store_unavailable
    def dead_lettered(self, origin: str, positions: Sequence[tuple[int, bytes]]) -> set[int]:
        """Positions of ``origin`` that an earlier (interrupted) run already dead-lettered.

        A position counts only if its content is unchanged (same SHA-256).
        """
        if not positions:
            return set()
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._judged, (origin, [n for n, _ in positions]))
            stored = {(row["position"], bytes(row["raw_sha256"])) for row in curs.fetchall()}
        return {n for n, raw in positions if (n, hashlib.sha256(raw).digest()) in stored}

    # ------------------------------------------------------------ the outbox

    @contextmanager
    def claim_unpublished(self, topic: str, limit: int, hold_ms: int) -> Iterator[_Claim]:
        """Lock up to ``limit`` unpublished Kafka dead letters read from ``topic``
        (``FOR UPDATE SKIP LOCKED``: publishers of one group never hold a row both);
        the marks commit when the block ends without error.

        The store ends sessions idle in a transaction after 5 s: the claim may stay
        idle ``hold_ms`` instead, while the broker is asked.
        """
        with store_unavailable(), self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL("SET LOCAL idle_in_transaction_session_timeout = {}").format(
                    Literal(f"{hold_ms}ms")
                )
            )
            curs.execute(self._claim, (topic, limit))
            rows = [
                PendingDeadLetter(
                    id=row["id"],
                    raw=bytes(row["raw"]),
                    key=bytes(row["key"]) if row["key"] is not None else None,
                    error_kind=row["error_kind"],
                    reason=row["reason"],
                    rule=row["rule"],
                    field=row["field"],
                    topic=row["topic"],
                    partition=row["partition"],
                    offset=row["position"],
                )
                for row in curs.fetchall()
            ]
            yield _Claim(curs, rows, self._mark)

    @raises_store_unavailable
    def unpublished(self, topic: str) -> int:
        """Kafka dead letters read from ``topic`` not yet on the dead-letter topic."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._unpublished, (topic,))
            row = curs.fetchone()
        return int(row["n"]) if row else 0

    # ------------------------------------------------------------ personal data

    def drop_mentioning(
        self, curs: Cursor[Any], application_numbers: Sequence[str], values: Sequence[bytes]
    ) -> int:
        """Erasure, in the caller's transaction: drop the raw input of every dead letter of
        these files, or whose bytes hold one of ``values`` (an erased person's UCI, names,
        email, date of birth, as written in JSON). How many were dropped."""
        curs.execute(self._drop_mentioning, (list(application_numbers), list(values)))
        return curs.rowcount

    @raises_store_unavailable
    def drop_older_than(self, age: timedelta) -> int:
        """Retention: drop the raw input of dead letters recorded more than ``age`` ago."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._drop_older, (age,))
            return curs.rowcount

    # ------------------------------------------------------------ the CLI

    @raises_store_unavailable
    def latest(self, limit: int) -> list[DictRow]:
        """The ``limit`` most recent dead letters, newest first, without their bytes."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._latest, (max(limit, 0),))
            return curs.fetchall()

    @raises_store_unavailable
    def get(self, dead_letter_id: int) -> DictRow | None:
        """Every column of one dead letter."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._one, (dead_letter_id,))
            return curs.fetchone()

    # ------------------------------------------------------------ retries (DeadLetterRetries)

    @raises_store_unavailable
    def retry_source(self, dead_letter_id: int) -> RetrySource | None:
        """What a retry feeds in again: position, raw, topic, partition, key."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._retry_source, (dead_letter_id,))
            row = curs.fetchone()
        if row is None:
            return None
        if row["raw_dropped_at"] is not None:
            raise RawInputDropped(dead_letter_id)
        return RetrySource(
            position=row["position"],
            raw=bytes(row["raw"]),
            topic=row["topic"],
            partition=row["partition"],
            key=bytes(row["key"]) if row["key"] is not None else None,
        )

    @raises_store_unavailable
    def mark_retried(self, dead_letter_id: int, origin: str) -> tuple[str, str] | None:
        """Mark the dead letter retried; the (error kind, reason) of the newest dead
        letter of ``origin`` (the retry's own, when it was rejected again)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._mark_retried, (dead_letter_id,))
            curs.execute(self._last_of_origin, (origin,))
            row = curs.fetchone()
        return (row["error_kind"], row["reason"]) if row else None


class _Claim:
    """Claimed rows and the way to mark them, inside the claim's transaction."""

    def __init__(
        self, curs: Cursor[DictRow], rows: list[PendingDeadLetter], mark: Composed
    ) -> None:
        self._curs, self.rows, self._mark = curs, rows, mark

    def mark_published(self, done: Sequence[tuple[int, str | None]]) -> None:
        self._curs.executemany(self._mark, [(error, row_id) for row_id, error in done])

"""The event_hashes table: each stored event's leaf hash, its case's chain link, and its
place in the global Merkle tree (docs/integrity.md).

A row goes in with its event, in the events' transaction and under their table lock
(``append``, called by the recorder), so no event is ever committed without its hashes
and leaf indexes follow notification ids with no gap. ``backfill`` hashes a log written
before this table, in batches that each commit, so an interrupted `db init` resumes.
``reading`` streams both tables for `casetrack audit verify` (domain/integrity/verify.py).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast
from uuid import UUID

import psycopg
import structlog
from eventsourcing.persistence import StoredEvent
from psycopg import Cursor
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.sql import SQL, Composed, Identifier, Literal

from adapters.postgres.log_epochs import LogEpochs
from domain.integrity.leaves import CHAIN_0, chain
from domain.integrity.stored import (
    Envelope,
    HashedEvent,
    StoredRow,
    column_leaf,
    envelope_leaves,
    hash_events,
)
from domain.integrity.verify import RawEvent, RawHash

log = structlog.get_logger(__name__)

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.event_hashes ("
    " leaf_index bigint PRIMARY KEY,"
    " notification_id bigint NOT NULL,"
    " case_id uuid NOT NULL,"
    " case_version bigint NOT NULL,"
    " leaf bytea NOT NULL,"
    " chain bytea NOT NULL,"
    " fields bytea NOT NULL,"
    " UNIQUE (case_id, case_version))"
)

# One row once a backfill has hashed every event stored before the writer hashed them
# (`through`: the last such notification id); from then on the writer alone hashes.
BACKFILL_DONE_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.event_hashes_backfill ("
    " through bigint NOT NULL,"
    " finished_at timestamptz NOT NULL DEFAULT now())"
)

BACKFILL_BATCH = 10_000
_AFTER_EVERY_ID = 1 << 62  # a notification id above any: "the last stored event"
_LAST_LINKS = 200_000  # cases whose last link the writer keeps in memory (~40 MB at most)
_FIELDS_SIZE = 36  # nine CRC-32s (leaves.field_digests)
# event_hashes rows as binary COPY takes them (PostgreSQL's COPY, "Binary Format"): a field
# count, then each field's byte length and its bytes; built here with one struct per row,
# which is several times cheaper than psycopg's row-by-row dumping.
_ROW = struct.Struct(">hiqiqi16siqi32si32si36s")
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_COPY_TRAILER = b"\xff\xff"
_COPY_CHUNK = 200  # rows a write: ~34 kB, about what psycopg sends at once
STREAM_BATCH = 5_000
"""Rows per fetch when the verifier streams the log: a few MB in memory, few round trips."""


class LogNotChained(RuntimeError):
    """Events would be hashed after a stored event that has no hashes: the backfill of an
    older log has not finished, or (once it has) casetrack did not write that event, or its
    hashes were deleted. Nothing is written; the message says which event."""

    def __init__(self, which: str) -> None:
        super().__init__(
            f"{which} has no hashes, so nothing can be chained after it. If `casetrack db"
            " init` has not run since the upgrade that added them, run it; if it has, that"
            " event was not written by casetrack or its hashes were deleted: run `casetrack"
            " audit verify`"
        )


class EventHashes:
    """The SQL of event_hashes in one schema; every method runs on the caller's cursor."""

    def __init__(self, schema: str, events_table: str) -> None:
        self.schema = schema
        # Each case's last committed link and its version, in two dicts of plain values:
        # no tuple per case for the garbage collector to walk (this cache lives long).
        # Cases keyed by their UUID's int: a UUID hashes in Python, an int in C.
        self._links: dict[int, bytes] = {}
        self._versions: dict[int, int] = {}
        self._pending: tuple[dict[int, bytes], dict[int, int]] = ({}, {})
        self._epochs = 0  # epochs begun when _links was filled: a rewrite invalidates it
        self.events_table = events_table
        table = SQL("{}.event_hashes").format(Identifier(schema))
        events = SQL("{}.{}").format(Identifier(schema), Identifier(events_table))
        self._lock_events = SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(events)
        self._tail = SQL(
            "SELECT (SELECT leaf_index FROM {h} ORDER BY leaf_index DESC LIMIT 1) AS leaf_index,"
            " (SELECT notification_id FROM {h} ORDER BY leaf_index DESC LIMIT 1) AS hashed,"
            " (SELECT max(notification_id) FROM {e} WHERE notification_id < %s) AS stored,"
            " {epochs}"
        ).format(h=table, e=events, epochs=LogEpochs(schema).state_columns)
        # A scalar subquery per key, not a join: the planner would hash-join the whole
        # table (a scan that grows with the log) where a few index probes do.
        self._chains = SQL(
            "SELECT k.case_id, (SELECT h.chain FROM {} h WHERE h.case_id = k.case_id"
            " AND h.case_version = k.case_version) AS chain"
            " FROM unnest(%b::uuid[], %b::int8[]) AS k(case_id, case_version)"
        ).format(table)
        self._copy = SQL(
            "COPY {} (leaf_index, notification_id, case_id, case_version, leaf, chain, fields)"
            " FROM STDIN (FORMAT BINARY)"
        ).format(table)
        self._unhashed: Composed = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
            " WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(events)
        self._select = SQL(
            "SELECT leaf_index, notification_id, case_id, case_version, leaf, chain, fields"
            " FROM {} WHERE leaf_index >= %s AND leaf_index < %s ORDER BY leaf_index"
        ).format(table)

        backfilled = SQL("{}.event_hashes_backfill").format(Identifier(schema))
        self._finished = SQL("SELECT through FROM {}").format(backfilled)
        self._finish = SQL("INSERT INTO {} (through) VALUES (%s)").format(backfilled)
        self._last_hashed = SQL(
            "SELECT notification_id FROM {} ORDER BY leaf_index DESC LIMIT 1"
        ).format(table)
        self._size = SQL("SELECT leaf_index FROM {} ORDER BY leaf_index DESC LIMIT 1").format(table)
        self._leaves = SQL(
            "SELECT leaf FROM {} WHERE leaf_index >= %s AND leaf_index < %s ORDER BY leaf_index"
        ).format(table)
        self._of_case = SQL(
            "SELECT h.leaf_index, h.notification_id, h.case_id, h.case_version, h.leaf, h.chain,"
            " h.fields, e.topic, e.state FROM {h} h JOIN {e} e"
            " ON e.originator_id = h.case_id AND e.originator_version = h.case_version"
            " AND e.notification_id = h.notification_id"
            " WHERE h.case_id = %s ORDER BY h.case_version"
        ).format(h=table, e=events)
        self._case_log = SQL(
            "SELECT e.notification_id, e.originator_version, e.topic, e.state, h.leaf_index,"
            " h.leaf, h.chain, h.fields FROM {e} e LEFT JOIN {h} h"
            " ON h.case_id = e.originator_id AND h.case_version = e.originator_version"
            " AND h.notification_id = e.notification_id"
            " WHERE e.originator_id = %s ORDER BY e.originator_version"
        ).format(h=table, e=events)
        self._rehash = SQL(
            "UPDATE {} h SET leaf = n.leaf, chain = n.chain, fields = n.fields"
            " FROM unnest(%b::uuid[], %b::int8[], %b::bytea[], %b::bytea[], %b::bytea[])"
            " AS n(case_id, case_version, leaf, chain, fields)"
            " WHERE h.case_id = n.case_id AND h.case_version = n.case_version"
        ).format(table)
        self._events_table = events
        self._table = table

    def leaves_of(
        self, stored: Sequence[StoredEvent], envelopes: Sequence[Envelope] | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Each event's (leaf hash, field digests), one at a time: they depend on the event
        alone, so the recorder computes each as its row streams to the server (the server's
        inserting the rows, not this, sets the pace of the COPY). From the writer's
        ``envelopes`` when given (no payload parsed back), else from the stored columns as
        everyone else reads them."""
        columns = (
            (cast(UUID, e.originator_id), e.originator_version, e.topic, e.state) for e in stored
        )
        if envelopes is None:
            return (column_leaf(c.bytes, v, t, s) for c, v, t, s in columns)
        return envelope_leaves(columns, envelopes)

    def append(
        self,
        curs: Cursor[DictRow],
        stored: Sequence[StoredEvent],
        leaves: Sequence[bytes],
        digests: Sequence[bytes],
        notification_ids: Sequence[int],
    ) -> None:
        """Under the events' table lock (the caller holds it), once ``stored`` is inserted
        with ``notification_ids``: check that every event stored before them is hashed,
        chain their ``leaves_of`` (leaf hashes, field digests) onto each case's previous
        link and store the rows."""
        if not stored:
            return
        first = self._next_index(curs, notification_ids[0])
        firsts: dict[int, int] = {}
        for e in stored:
            firsts.setdefault(e.originator_id.int, e.originator_version)  # type: ignore[union-attr]
        last = self._links_before(curs, firsts)  # becomes the batch's last links
        get = last.get
        versions: dict[int, int] = {}
        pack = _ROW.pack
        rows = [_COPY_SIGNATURE]
        append = rows.append
        with curs.copy(self._copy) as copy:
            # One pass: each event's link continues its case's last one, and its row is
            # laid out and sent, a chunk at a time: the server inserts the rows sent while
            # the next are computed, rather than all of them after.
            for index, (notification_id, e, leaf, fields) in enumerate(
                zip(notification_ids, stored, leaves, digests, strict=True), first
            ):
                case: UUID = e.originator_id  # type: ignore[assignment]
                key = case.int
                version = e.originator_version
                last[key] = link = chain(get(key, CHAIN_0), leaf)
                versions[key] = version
                append(pack(7, 8, index, 8, notification_id, 16, case.bytes, 8, version, 32,
                            leaf, 32, link, _FIELDS_SIZE, fields))  # fmt: skip
                if len(rows) == _COPY_CHUNK:
                    copy.write(b"".join(rows))
                    rows.clear()
            append(_COPY_TRAILER)
            copy.write(b"".join(rows))
        self._pending = (last, versions)

    def committed(self) -> None:
        """The transaction that wrote the last ``append``'s rows committed: their links are
        now each case's last, and the next batch need not read them back. Only links known
        committed are kept, and one is used only for the version it was written at, so a
        case another process wrote since is read from the table as before."""
        links, versions = self._pending
        if len(self._links) + len(links) > _LAST_LINKS:
            self._links.clear()
            self._versions.clear()
        self._links.update(links)
        self._versions.update(versions)
        self._pending = ({}, {})

    def _next_index(self, curs: Cursor[DictRow], before: int) -> int:
        """The leaf index after the last hashed event; LogNotChained unless that event is
        the last stored before notification id ``before`` (every earlier one is hashed)."""
        curs.execute(self._tail, (before,))
        tail = curs.fetchone()
        assert tail is not None
        if tail["rewriting"] or tail["epochs"] != self._epochs:
            self._links.clear()  # links a rewrite (log_sealing) may have changed
            self._versions.clear()
            # While a rewrite is open, the links committed now may be rehashed before it
            # closes (which leaves the count of epochs as it is): -1 clears them again at
            # the first batch after the close.
            self._epochs = -1 if tail["rewriting"] else tail["epochs"]
        if tail["hashed"] != tail["stored"]:
            raise LogNotChained(f"the stored event at notification id {tail['stored']}")
        return 0 if tail["leaf_index"] is None else tail["leaf_index"] + 1

    def _write(self, curs: Cursor[DictRow], rows: Sequence[StoredRow]) -> None:
        """Hash and store stored rows that have their ids (the backfill's batches)."""
        first = self._next_index(curs, rows[0].notification_id)
        self.copy(curs, hash_events(rows, self._previous_links(curs, rows), first))

    def copy(self, curs: Cursor[DictRow], hashed: Iterable[HashedEvent]) -> None:
        """COPY rows in as they are: the caller vouches that they continue the log (the
        recorder's and the backfill's ``_write``, or a benchmark's synthetic log)."""
        pack = _ROW.pack
        data = [_COPY_SIGNATURE]
        for h in hashed:
            if (len(h.leaf), len(h.chain), len(h.fields)) != (32, 32, _FIELDS_SIZE):
                raise ValueError("a leaf and a link are 32 bytes, field digests 36")
            data.append(
                pack(7, 8, h.leaf_index, 8, h.notification_id, 16, h.case_id.bytes, 8,
                     h.case_version, 32, h.leaf, 32, h.chain, _FIELDS_SIZE, h.fields)
            )  # fmt: skip
        data.append(_COPY_TRAILER)
        with curs.copy(self._copy) as copy:
            copy.write(b"".join(data))

    def _previous_links(
        self, curs: Cursor[DictRow], rows: Sequence[StoredRow]
    ) -> dict[UUID, bytes]:
        firsts: dict[int, int] = {}
        for row in rows:
            firsts.setdefault(row.case_id.int, row.case_version)
        return {UUID(int=case): link for case, link in self._links_before(curs, firsts).items()}

    def _links_before(self, curs: Cursor[DictRow], firsts: Mapping[int, int]) -> dict[int, bytes]:
        """Each case's link before its first version here (``firsts``: by the case UUID's
        int); a case that starts here starts at CHAIN_0. A case continued here whose
        previous event has no link cannot be chained."""
        links: dict[int, bytes] = {}
        wanted: dict[int, int] = {}
        for case, version in firsts.items():
            if version > 1:
                if self._versions.get(case) == version - 1:
                    links[case] = self._links[case]
                else:
                    wanted[case] = version - 1
        if wanted:
            cases = [UUID(int=case) for case in wanted]
            curs.execute(self._chains, (cases, list(wanted.values())))
            found = {r["case_id"].int: bytes(r["chain"]) for r in curs.fetchall() if r["chain"]}
            if len(found) != len(wanted):
                case = next(c for c in wanted if c not in found)
                raise LogNotChained(f"case {UUID(int=case)} version {wanted[case]}")
            links.update(found)
        return links

    def rehash(self, curs: Cursor[DictRow], case_ids: Iterable[UUID]) -> int:
        """Recompute the leaves and chains of these cases from their stored rows, in place
        (each event keeps its leaf index): the sanctioned rewrite (log_sealing) changed
        some of their payloads. Only under the events' table lock; returns the rows."""
        rows: list[StoredRow] = []
        for case_id in case_ids:
            rows += [row for row, hashed in self.case_log(curs, case_id) if hashed is not None]
        hashed = hash_events(rows, {}, 0)
        curs.execute(
            self._rehash,
            (
                [h.case_id for h in hashed],
                [h.case_version for h in hashed],
                [h.leaf for h in hashed],
                [h.chain for h in hashed],
                [h.fields for h in hashed],
            ),
        )
        return curs.rowcount

    def size(self, curs: Cursor[DictRow]) -> int:
        """How many events are hashed: the size of the log's tree now."""
        curs.execute(self._size)
        row = curs.fetchone()
        return 0 if row is None else row["leaf_index"] + 1

    def leaves(self, curs: Cursor[DictRow], start: int, stop: int) -> list[bytes]:
        """The leaf hashes with leaf_index in [start, stop), in order."""
        curs.execute(self._leaves, (start, stop))
        return [bytes(r["leaf"]) for r in curs.fetchall()]

    def of_case(self, curs: Cursor[DictRow], case_id: UUID) -> list[tuple[StoredRow, HashedEvent]]:
        """One case's stored events with their hashes, in version order; an event without
        hashes (a log not backfilled, or tampered) is left out, as is a hash without event."""
        curs.execute(self._of_case, (case_id,))
        return [
            (
                StoredRow(
                    r["notification_id"],
                    r["case_id"],
                    r["case_version"],
                    r["topic"],
                    bytes(r["state"]),
                ),
                HashedEvent(
                    r["leaf_index"],
                    r["notification_id"],
                    r["case_id"],
                    r["case_version"],
                    bytes(r["leaf"]),
                    bytes(r["chain"]),
                    bytes(r["fields"]),
                ),
            )
            for r in curs.fetchall()
        ]

    def case_log(
        self, curs: Cursor[DictRow], case_id: UUID
    ) -> list[tuple[StoredRow, HashedEvent | None]]:
        """Every stored event of one case, in version order, with its hashes, or None for
        an event that has none (a log not backfilled, or hashes deleted): what an auditor
        reads, where a missing hash must show rather than hide the event."""
        curs.execute(self._case_log, (case_id,))
        found: list[tuple[StoredRow, HashedEvent | None]] = []
        for r in curs.fetchall():
            row = StoredRow(
                r["notification_id"],
                case_id,
                r["originator_version"],
                r["topic"],
                bytes(r["state"]),
            )
            hashed = None
            if r["leaf_index"] is not None:
                hashed = HashedEvent(
                    r["leaf_index"],
                    r["notification_id"],
                    case_id,
                    r["originator_version"],
                    bytes(r["leaf"]),
                    bytes(r["chain"]),
                    bytes(r["fields"]),
                )
            found.append((row, hashed))
        return found

    @contextmanager
    def reading(
        self, conn: psycopg.Connection[Any], snapshot: str | None = None
    ) -> Iterator[LogReader]:
        """A reader of both tables for the verifier, in one REPEATABLE READ, READ ONLY
        transaction on `conn` (which must be outside a transaction): every stream it opens
        sees the same snapshot, so a writer committing meanwhile (an event and its hashes,
        together) is in all of them or in none. With `snapshot` (pg_export_snapshot() of
        another session), that session's snapshot. Its cursors close with the block."""
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if snapshot is not None:
                conn.execute(SQL("SET TRANSACTION SNAPSHOT {}").format(Literal(snapshot)))
            reader = LogReader(conn, self._events_table, self._table)
            try:
                yield reader
            finally:
                reader.close()

    @contextmanager
    def streams(
        self, conn: psycopg.Connection[Any], cases: Sequence[UUID] | None = None
    ) -> Iterator[tuple[Iterator[RawEvent], Iterator[RawHash]]]:
        """Both tables' rows (of `cases` only, when given) from one snapshot, as
        domain.integrity.verify.verify_rows takes them."""
        with self.reading(conn) as reader:
            yield reader.events(cases), reader.hashes(cases)

    def rows(self, curs: Cursor[DictRow], start: int, stop: int) -> list[HashedEvent]:
        """Rows with leaf_index in [start, stop), in order."""
        curs.execute(self._select, (start, stop))
        return [HashedEvent(**r) for r in curs.fetchall()]

    def backfill(
        self, conn: psycopg.Connection[tuple[object, ...]], batch: int = BACKFILL_BATCH
    ) -> int:
        """Hash every stored event that has no hashes yet, oldest first, ``batch`` per
        transaction; returns how many it hashed. Writers wait for each batch's lock.

        Once a backfill has finished (or found nothing to do), that is recorded and no
        later one hashes anything: from then on only the writer hashes, so an unhashed
        event was not written by casetrack, and hashing it would launder it into the log.
        Such events are reported (by notification id) and left for `audit verify`."""
        done = 0
        while True:
            with conn.transaction(), conn.cursor(row_factory=dict_row) as curs:
                curs.execute(self._lock_events)
                curs.execute(self._finished)
                finished = curs.fetchone()
                curs.execute(self._last_hashed)
                last = curs.fetchone()
                curs.execute(self._unhashed, (last["notification_id"] if last else 0, batch))
                rows = [
                    StoredRow(
                        r["notification_id"],
                        r["originator_id"],
                        r["originator_version"],
                        r["topic"],
                        bytes(r["state"]),
                    )
                    for r in curs.fetchall()
                ]
                if finished is not None:
                    if rows:
                        log.error(
                            "stored events without hashes after the log was fully hashed:"
                            " casetrack did not write them; not hashing them, run"
                            " `casetrack audit verify`",
                            first_notification_id=rows[0].notification_id,
                            hashed_through=finished["through"],
                        )
                    break
                if not rows:
                    curs.execute(self._finish, (last["notification_id"] if last else 0,))
                    break
                self._write(curs, rows)
            done += len(rows)
            log.info("hashed stored events", events=done)
        return done


Bounds = tuple[int | None, int | None]
"""[low, high) of a column; None: no bound on that side."""


class LogReader:
    """The verifier's streams of the events and event_hashes tables: case ids as their 16
    bytes (uuid_send), so that no row costs a UUID object; server-side cursors read in
    binary, STREAM_BATCH rows a fetch, so memory stays constant. Made by
    EventHashes.reading, inside its transaction."""

    def __init__(self, conn: psycopg.Connection[Any], events: Composed, hashes: Composed) -> None:
        self.conn = conn
        self._events = events
        self._hashes = hashes
        self._cursors: list[psycopg.ServerCursor[Any]] = []

    def events(
        self, cases: Sequence[UUID] | None = None, notification_ids: Bounds = (None, None)
    ) -> Iterator[RawEvent]:
        """Events rows in notification id order: (notification id, case id bytes, case
        version, topic, state); of `cases`, and within `notification_ids`, when given."""
        where, params = _where("originator_id", cases, "notification_id", notification_ids)
        columns = "notification_id, uuid_send(originator_id), originator_version, topic, state"
        return self._stream(
            SQL("SELECT {} FROM {}{} ORDER BY notification_id").format(
                SQL(columns), self._events, where
            ),
            params,
        )

    def hashes(
        self, cases: Sequence[UUID] | None = None, leaf_indexes: Bounds = (None, None)
    ) -> Iterator[RawHash]:
        """event_hashes rows in leaf index order: (leaf index, notification id, case id
        bytes, case version, leaf, chain, fields); of `cases`, and within `leaf_indexes`,
        when given."""
        where, params = _where("case_id", cases, "leaf_index", leaf_indexes)
        columns = (
            "leaf_index, notification_id, uuid_send(case_id), case_version, leaf, chain, fields"
        )
        return self._stream(
            SQL("SELECT {} FROM {}{} ORDER BY leaf_index").format(
                SQL(columns), self._hashes, where
            ),
            params,
        )

    def export_snapshot(self) -> str:
        """This transaction's snapshot, for other sessions to read the same (their
        EventHashes.reading(conn, snapshot)); valid while this transaction is open."""
        row = self._one(SQL("SELECT pg_export_snapshot()"))
        assert row is not None
        return str(row[0])

    def notification_ids(self, leaf_indexes: Sequence[int]) -> dict[int, int]:
        """leaf index -> notification id of the hash rows at `leaf_indexes` that exist."""
        query = SQL("SELECT leaf_index, notification_id FROM {} WHERE leaf_index = ANY(%b)")
        with self.conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(query.format(self._hashes), (list(leaf_indexes),))
            return {int(i): int(n) for i, n in curs.fetchall()}

    def size(self) -> int:
        """One past the highest leaf index (what the tree's size is when nothing is amiss)."""
        row = self._one(
            SQL("SELECT leaf_index FROM {} ORDER BY leaf_index DESC LIMIT 1").format(self._hashes)
        )
        return 0 if row is None else int(row[0]) + 1

    def _one(self, query: Composed | SQL) -> tuple[Any, ...] | None:
        with self.conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(query)
            return curs.fetchone()

    def close(self) -> None:
        for cursor in self._cursors:
            cursor.close()

    def _stream(self, query: Composed, params: list[Any]) -> Iterator[Any]:
        cursor = self.conn.cursor(
            f"verify_{len(self._cursors)}", binary=True, row_factory=tuple_row
        )
        self._cursors.append(cursor)
        cursor.execute(query, params)
        return _batched(cursor)


def _where(
    case_column: str, cases: Sequence[UUID] | None, column: str, bounds: Bounds
) -> tuple[Composed, list[Any]]:
    """The WHERE clause (empty when nothing is filtered) and its parameters."""
    conditions: list[Composed] = []
    params: list[Any] = []
    if cases is not None:
        conditions.append(SQL("{} = ANY(%b)").format(Identifier(case_column)))
        params.append(list(cases))
    low, high = bounds
    if low is not None:
        conditions.append(SQL("{} >= %s").format(Identifier(column)))
        params.append(low)
    if high is not None:
        conditions.append(SQL("{} < %s").format(Identifier(column)))
        params.append(high)
    if not conditions:
        return Composed([]), params
    return Composed([SQL(" WHERE "), SQL(" AND ").join(conditions)]), params


def _batched(cursor: psycopg.ServerCursor[Any]) -> Iterator[Any]:
    while rows := cursor.fetchmany(STREAM_BATCH):
        yield from rows

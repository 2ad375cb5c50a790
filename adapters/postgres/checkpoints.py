"""The checkpoints table: every signed checkpoint of the log's Merkle tree, kept.

A checkpoint is a C2SP signed note (domain/integrity/checkpoint.py) over the tree's size and
root. The table is a convenience for auditors and for `audit verify`, not a source of trust:
a note verifies with the public key alone, and an edited row no longer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.checkpoints ("
    " size bigint PRIMARY KEY,"
    " root bytea NOT NULL,"
    " note text NOT NULL,"
    " signed_at timestamptz NOT NULL DEFAULT now())"
)

# The checkpoints of earlier epochs (domain/integrity/epochs.py), moved here when a
# sanctioned rewrite began: kept for auditors who hold one, never extended again.
RETIRED_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.retired_checkpoints ("
    " epoch integer NOT NULL,"
    " size bigint NOT NULL,"
    " root bytea NOT NULL,"
    " note text NOT NULL,"
    " signed_at timestamptz NOT NULL,"
    " PRIMARY KEY (epoch, size))"
)


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    signed_at: datetime


class Checkpoints:
    """The SQL of the checkpoints table in one schema, on the caller's cursor."""

    def __init__(self, schema: str) -> None:
        table = SQL("{}.checkpoints").format(Identifier(schema))
        columns = SQL("SELECT size, root, note, signed_at FROM {}").format(table)
        self._add = SQL(
            "INSERT INTO {} (size, root, note) VALUES (%s, %s, %s) ON CONFLICT (size) DO NOTHING"
        ).format(table)
        self._latest = SQL("{} ORDER BY size DESC LIMIT 1").format(columns)
        self._all = SQL("{} ORDER BY size").format(columns)
        self._at = SQL("{} WHERE size = %s").format(columns)
        retired = SQL("{}.retired_checkpoints").format(Identifier(schema))
        self._retire = SQL(
            "WITH moved AS (DELETE FROM {} RETURNING size, root, note, signed_at)"
            " INSERT INTO {} (epoch, size, root, note, signed_at)"
            " SELECT %s, size, root, note, signed_at FROM moved"
        ).format(table, retired)
        self._retired = SQL(
            "SELECT size, root, note, signed_at FROM {} WHERE epoch = %s ORDER BY size"
        ).format(retired)

    def add(self, curs: Cursor[DictRow], size: int, root: bytes, note: str) -> None:
        """Keep a signed checkpoint (one per size: a second one of the same size is the same
        tree, already kept)."""
        curs.execute(self._add, (size, root, note))

    def latest(self, curs: Cursor[DictRow]) -> StoredCheckpoint | None:
        curs.execute(self._latest)
        row = curs.fetchone()
        return _checkpoint(row) if row else None

    def at(self, curs: Cursor[DictRow], size: int) -> StoredCheckpoint | None:
        curs.execute(self._at, (size,))
        row = curs.fetchone()
        return _checkpoint(row) if row else None

    def all(self, curs: Cursor[DictRow]) -> list[StoredCheckpoint]:
        curs.execute(self._all)
        return [_checkpoint(row) for row in curs.fetchall()]

    def retire(self, curs: Cursor[DictRow], epoch: int) -> None:
        """Move every checkpoint to retired_checkpoints as `epoch`'s: a rewrite began."""
        curs.execute(self._retire, (epoch,))

    def retired(self, curs: Cursor[DictRow], epoch: int) -> list[StoredCheckpoint]:
        """The checkpoints signed in `epoch` before a rewrite retired them, by size."""
        curs.execute(self._retired, (epoch,))
        return [_checkpoint(row) for row in curs.fetchall()]


def _checkpoint(row: DictRow) -> StoredCheckpoint:
    return StoredCheckpoint(row["size"], bytes(row["root"]), row["note"], row["signed_at"])

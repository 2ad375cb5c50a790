"""The merkle_nodes table: roots of the log tree's perfect subtrees of 256 leaves and more.

Derived data, kept so that a proof in a tree of a million leaves reads a few hundred leaf
hashes and a few dozen nodes instead of every leaf. Written by the checkpointer as it
extends the tree; a node is never trusted: a wrong one only yields a proof that fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

TILE_HEIGHT = 8
"""Nodes of this height (256 leaves) and above are kept; smaller ones are hashed on demand."""

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.merkle_nodes ("
    " height smallint NOT NULL,"
    " index bigint NOT NULL,"
    " hash bytea NOT NULL,"
    " PRIMARY KEY (height, index))"
)


class MerkleNodes:
    """The SQL of merkle_nodes in one schema, on the caller's cursor."""

    def __init__(self, schema: str) -> None:
        table = SQL("{}.merkle_nodes").format(Identifier(schema))
        self._get = SQL(
            "SELECT n.height, n.index, n.hash FROM unnest(%b::int2[], %b::int8[]) AS k(height,"
            " index) JOIN {} n USING (height, index)"
        ).format(table)
        self._add = SQL(
            "INSERT INTO {} (height, index, hash) SELECT * FROM unnest(%b::int2[], %b::int8[],"
            " %b::bytea[]) ON CONFLICT DO NOTHING"
        ).format(table)
        self._clear = SQL("TRUNCATE {}").format(table)
        self._covered = SQL(
            "SELECT index FROM {} WHERE height = %s ORDER BY index DESC LIMIT 1"
        ).format(table)

    def get(
        self, curs: Cursor[DictRow], keys: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        """The stored roots of these (height, index) subtrees; those not kept are absent."""
        if not keys:
            return {}
        curs.execute(self._get, ([h for h, _ in keys], [i for _, i in keys]))
        return {(r["height"], r["index"]): bytes(r["hash"]) for r in curs.fetchall()}

    def add(self, curs: Cursor[DictRow], nodes: Iterable[tuple[int, int, bytes]]) -> None:
        """Keep (height, index, hash) nodes of height TILE_HEIGHT and above."""
        kept = [n for n in nodes if n[0] >= TILE_HEIGHT]
        if kept:
            curs.execute(
                self._add, ([n[0] for n in kept], [n[1] for n in kept], [n[2] for n in kept])
            )

    def clear(self, curs: Cursor[DictRow]) -> None:
        """Forget every node: the leaves they were hashed from were rewritten."""
        curs.execute(self._clear)

    def covered(self, curs: Cursor[DictRow]) -> int:
        """How many leaves, from the first, the kept tiles cover."""
        curs.execute(self._covered, (TILE_HEIGHT,))
        row = curs.fetchone()
        return 0 if row is None else (row["index"] + 1) << TILE_HEIGHT

"""The projectors' leases as PostgreSQL session advisory locks: every statement on them.

A process keeps one connection of its own for its leases (``PgLeases``): a lease is an
exclusive advisory lock taken with ``pg_try_advisory_lock`` on that connection, and
membership of a group is a shared advisory lock on the group's key. The server frees
both when the connection ends, however it ends: a process killed with -9, a host
that vanished (once TCP keepalives give up on it), a backend terminated. So who holds
what, and how many members a group has, is read from ``pg_locks``, never from rows
that a dead process would leave behind.

Keys are two int4s: ``NAMESPACE`` ("LEAS"), and 31 bits of a hash of the schema and
the lease's name (or the group's), so projectors of different schemas in one database
never meet. The connection's application_name says ``casetrack-project host:pid``:
``holders`` shows it in `casetrack projections status`.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Sequence
from typing import Any, LiteralString

import psycopg
from psycopg import Cursor

NAMESPACE = 0x4C454153  # "LEAS"
APPLICATION = "casetrack-project"

_IN_THIS_DATABASE = (
    "l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = %s::oid"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_MEMBERS = "SELECT count(*) FROM pg_locks l WHERE " + _IN_THIS_DATABASE + " AND l.objid = %s::oid"
_HOLDERS = (
    "SELECT l.objid::bigint, a.application_name, l.pid FROM pg_locks l"
    " LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE "
    + _IN_THIS_DATABASE
    + " AND l.mode = 'ExclusiveLock' AND l.objid = ANY(%s::oid[])"
)


def key(schema: str, name: str) -> int:
    """The second int4 of ``name``'s lock in ``schema`` (non-negative, so it reads back
    from pg_locks' oid columns unchanged)."""
    digest = hashlib.blake2b(f"{schema}\0{name}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def holder_name() -> str:
    """This process as `casetrack projections status` shows it: host:pid."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


class PgLeases:
    """A ``LeaseBackend`` (projections/leases.py) on a connection of its own to ``url``."""

    def __init__(self, url: str, schema: str, holder: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self.holder = holder or holder_name()  # tests name two daemons of one process
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def join(self, group: str) -> None:
        if self._conn is not None and not self._conn.closed:
            return
        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=10,
            application_name=f"{APPLICATION} {self.holder}",
            # A peer that vanished without a FIN is noticed in ~15 s, not hours.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=5,
        )
        try:
            conn.execute(
                "SELECT pg_try_advisory_lock_shared(%s, %s)",
                (NAMESPACE, key(self.schema, "members\0" + group)),
            )
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def members(self, group: str) -> int:
        return int(self._one(_MEMBERS, key(self.schema, "members\0" + group)) or 0)

    def try_take(self, name: str) -> bool:
        return bool(self._one("SELECT pg_try_advisory_lock(%s, %s)", key(self.schema, name)))

    def release(self, name: str) -> None:
        self._one("SELECT pg_advisory_unlock(%s, %s)", key(self.schema, name))

    def close(self) -> None:
        """Close the connection: the server frees every lease and the membership."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _one(self, statement: LiteralString, lock: int) -> Any:
        """The one value ``statement`` returns for the lock (``NAMESPACE``, ``lock``)."""
        if self._conn is None or self._conn.closed:
            raise psycopg.OperationalError("the lease connection is closed")
        row = self._conn.execute(statement, (NAMESPACE, lock)).fetchone()
        return row[0] if row else None


def holders(curs: Cursor[Any], schema: str, names: Sequence[str]) -> dict[str, str]:
    """Who holds the lease on each of ``names`` now (host:pid), for those held."""
    by_key = {key(schema, name): name for name in names}
    curs.execute(_HOLDERS, (NAMESPACE, list(by_key)))
    prefix = APPLICATION + " "
    found: dict[str, str] = {}
    for row in curs.fetchall():
        lock, application, pid = row.values() if isinstance(row, dict) else row
        shown = str(application or "")
        found[by_key[int(lock)]] = (
            shown.removeprefix(prefix) if shown.startswith(prefix) else f"server pid {pid}"
        )
    return found

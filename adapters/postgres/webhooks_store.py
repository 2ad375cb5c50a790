"""Webhook endpoints in PostgreSQL: a representative's receivers, their secrets, and
whether they keep failing.

The secret is kept as given (``whsec_…``): every delivery is signed with it, so it must
be readable; it is shown to its owner once, at creation, and never listed. URLs are
the owner's systems, not personal data, but only the host is ever logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier
from psycopg_pool import AsyncConnectionPool

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.webhook_endpoints ("
    " endpoint_id bigserial PRIMARY KEY,"
    " account_id bigint NOT NULL REFERENCES {schema}.accounts ON DELETE CASCADE,"
    " url text NOT NULL,"
    " events text[] NOT NULL,"
    " secret text NOT NULL,"
    " created_at timestamptz NOT NULL,"
    " failing_since timestamptz,"
    " disabled_at timestamptz)",
    "CREATE INDEX IF NOT EXISTS webhook_endpoints_account_ix"
    " ON {schema}.webhook_endpoints (account_id)",
)
MAX_PER_ACCOUNT = 10


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: int
    url: str
    events: list[str]
    created_at: datetime
    disabled_at: datetime | None


class TooManyEndpoints(Exception):
    """An account may register MAX_PER_ACCOUNT endpoints."""


def _q(schema: str, text: str) -> str:
    return SQL(text).format(s=Identifier(schema)).as_string(None)


class WebhooksStore:
    """The API's statements, each one round trip on a connection of the pool."""

    def __init__(self, pool: AsyncConnectionPool[Any], schema: str) -> None:
        self.pool = pool
        q = lambda text: _q(schema, text)  # noqa: E731
        self._count = q("SELECT count(*) FROM {s}.webhook_endpoints WHERE account_id = %s")
        self._lock_account = q("SELECT 1 FROM {s}.accounts WHERE account_id = %s FOR UPDATE")
        self._insert = q(
            "INSERT INTO {s}.webhook_endpoints (account_id, url, events, secret, created_at)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING endpoint_id"
        )
        self._list = q(
            "SELECT endpoint_id, url, events, created_at, disabled_at"
            " FROM {s}.webhook_endpoints WHERE account_id = %s ORDER BY endpoint_id"
        )
        self._delete = q(
            "DELETE FROM {s}.webhook_endpoints WHERE account_id = %s AND endpoint_id = %s"
        )

    async def add(
        self, account_id: int, url: str, events: list[str], secret: str, now: datetime
    ) -> Endpoint:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(self._lock_account, (account_id,))  # one count at a time
            cur = await conn.execute(self._count, (account_id,))
            row = await cur.fetchone()
            if row is not None and int(row[0]) >= MAX_PER_ACCOUNT:
                raise TooManyEndpoints
            cur = await conn.execute(self._insert, (account_id, url, events, secret, now))
            created = await cur.fetchone()
        assert created is not None
        return Endpoint(int(created[0]), url, events, now, None)

    async def list(self, account_id: int) -> list[Endpoint]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._list, (account_id,))
            return [Endpoint(*row) for row in await cur.fetchall()]

    async def delete(self, account_id: int, endpoint_id: int) -> bool:
        """False when the account has no such endpoint. Its pending deliveries are
        dead-lettered when they come due (the notifier finds no endpoint)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._delete, (account_id, endpoint_id))
            return cur.rowcount == 1


class EndpointHealth:
    """The notifier's statements, in its transaction: a success clears ``failing_since``;
    a failure sets it once; an endpoint failing since longer than a delivery's retries
    last is disabled (its owner is told)."""

    def __init__(self, schema: str) -> None:
        s = Identifier(schema)
        self._ok = SQL(
            "UPDATE {}.webhook_endpoints SET failing_since = NULL"
            " WHERE endpoint_id = %s AND failing_since IS NOT NULL"
        ).format(s)
        self._failed = SQL(
            "UPDATE {}.webhook_endpoints SET failing_since = coalesce(failing_since, now())"
            " WHERE endpoint_id = %s"
        ).format(s)
        self._disable = SQL(
            "UPDATE {s}.webhook_endpoints w SET disabled_at = now() FROM {s}.accounts a"
            " WHERE w.endpoint_id = %s AND w.disabled_at IS NULL AND a.account_id = w.account_id"
            " RETURNING a.email, a.language, w.url"
        ).format(s=s)
        self._enable = SQL(
            "UPDATE {}.webhook_endpoints SET disabled_at = NULL, failing_since = NULL"
            " WHERE endpoint_id = %s"
        ).format(s)

    def succeeded(self, curs: Cursor[DictRow], endpoint_id: int) -> None:
        curs.execute(self._ok, (endpoint_id,))

    def failed(self, curs: Cursor[DictRow], endpoint_id: int) -> None:
        curs.execute(self._failed, (endpoint_id,))

    def disable(self, curs: Cursor[DictRow], endpoint_id: int) -> tuple[str, str, str] | None:
        """Disable it; (owner's email, language, url) when this call disabled it."""
        curs.execute(self._disable, (endpoint_id,))
        row = curs.fetchone()
        return None if row is None else (row["email"], row["language"], row["url"])

    def enable(self, curs: Cursor[DictRow], endpoint_id: int) -> None:
        curs.execute(self._enable, (endpoint_id,))

"""Fixed-window rate limits counted in PostgreSQL, so every server process shares them.

A bucket is an HMAC under the server secret (identifiers and addresses are
personal data: see domain.accounts.bucket_digest); each hit is one upsert that
returns the window's count. Old windows are swept now and then by the hits
themselves, so the table stays small without a cron job.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from psycopg.sql import SQL, Identifier
from psycopg_pool import AsyncConnectionPool

RATE_LIMITS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.rate_limits ("
    " bucket bytea NOT NULL,"
    " window_start timestamptz NOT NULL,"
    " hits integer NOT NULL,"
    " PRIMARY KEY (bucket, window_start))"
)
_SWEEP_ONE_IN = 500


class RateLimits:
    def __init__(self, pool: AsyncConnectionPool[Any], schema: str) -> None:
        self.pool = pool
        ident = Identifier(schema)
        self._hit = (
            SQL(
                "INSERT INTO {}.rate_limits AS r (bucket, window_start, hits) VALUES (%s, %s, 1)"
                " ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1"
                " RETURNING hits"
            )
            .format(ident)
            .as_string(None)
        )
        self._sweep = (
            SQL("DELETE FROM {}.rate_limits WHERE window_start < %s").format(ident).as_string(None)
        )

    async def hit(self, bucket: bytes, limit: int, window_seconds: int, now: datetime) -> int:
        """Count one hit; returns 0 when within the limit, else seconds until the window ends."""
        epoch = now.timestamp()
        start = epoch - epoch % window_seconds
        window_start = datetime.fromtimestamp(start, tz=now.tzinfo)
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._hit, (bucket, window_start))
            row = await cur.fetchone()
            if secrets.randbelow(_SWEEP_ONE_IN) == 0:
                await conn.execute(self._sweep, (now - timedelta(days=1),))
        hits = int(row[0]) if row else 1
        if hits <= limit:
            return 0
        return max(1, int(start + window_seconds - epoch + 0.999))

"""The tracker's reads in one round trip each: session, the caller's link to the file,
the status view and the history for the caller's role in the caller's language
(tracker_history keeps one row per role, so the join on the role is the filter).

A poller's request is the hot path (scripts/bench_api.py): one indexed query
that checks the session, finds the caller's role on the file and returns the
view and the history as JSON text, which the API splices into its answer
without re-encoding. No row means no live session; a row without a role
means the caller is not on that file (or it does not exist): the same 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.sql import SQL, Identifier

from adapters.postgres.lane import ConnectionLane

# Positional parameters, in order: lang (or NULL), application number, token hash, now.
_READ = (
    "SELECT a.account_id, x.lang, l.role, v.view::text,"
    " CASE WHEN x.lang = 'fr' THEN h.history_fr ELSE h.history_en END"
    " FROM {s}.sessions t"
    " JOIN {s}.accounts a ON a.account_id = t.account_id"
    " CROSS JOIN LATERAL (SELECT coalesce(%s::text, a.language) AS lang) x"
    " LEFT JOIN {s}.account_links l ON l.account_id = t.account_id"
    " AND l.application_number = %s"
    " LEFT JOIN {s}.case_status v ON v.case_id = l.case_id"
    " LEFT JOIN {s}.tracker_history h ON h.case_id = l.case_id AND h.role = l.role"
    " WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > %s"
)


@dataclass(frozen=True)
class FileRead:
    account_id: int
    language: str
    role: str | None  # None: not the caller's file (or no such file)
    view: str | None  # the case_status view, JSON text
    history: str | None  # the history entries ``role`` may see in ``language``, JSON text


class ReadsStore:
    def __init__(self, lane: ConnectionLane, schema: str) -> None:
        self.lane = lane
        self._read = SQL(_READ).format(s=Identifier(schema)).as_string(None)

    async def read(
        self, token_hash: bytes, application_number: str, lang: str | None, now: datetime
    ) -> FileRead | None:
        """None when the session is unknown, expired or revoked."""
        async with self.lane.connection() as conn:
            cur = await conn.execute(self._read, (lang, application_number, token_hash, now))
            row = await cur.fetchone()
        if row is None:
            return None
        account_id, language, role, view, history = row
        if view is None:
            role = None
        return FileRead(account_id, language, role, view, (history or "[]") if role else None)

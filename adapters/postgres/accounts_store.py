"""Tracker accounts in PostgreSQL: pending codes, accounts, their files, sessions, backoff.

Times come from the caller's clock (never ``now()``), so expiry is testable
without sleeping. Codes, passwords and session tokens are stored hashed;
backoff buckets are HMACs of the login and client address. Logins and
emails are personal data: they are stored, never logged.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

import orjson
from psycopg import AsyncConnection, Connection
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier
from psycopg_pool import AsyncConnectionPool

from domain.application_number import case_id
from domain.backoff import Backoff
from projections import case_status

_SWEEP_ONE_IN = 500  # attempts that also delete day-old quiet buckets

ACCOUNTS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.accounts ("
    " account_id bigserial PRIMARY KEY,"
    " login text NOT NULL UNIQUE,"
    " kind text NOT NULL,"
    " email text NOT NULL,"
    " language text NOT NULL,"
    " password_hash text NOT NULL,"
    " created_at timestamptz NOT NULL,"
    " password_changed_at timestamptz NOT NULL)"
)
ACCOUNT_LINKS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.account_links ("
    " account_id bigint NOT NULL REFERENCES {schema}.accounts ON DELETE CASCADE,"
    " application_number text NOT NULL,"
    " case_id uuid NOT NULL,"
    " role text NOT NULL,"
    " linked_at timestamptz NOT NULL,"
    " PRIMARY KEY (account_id, application_number))"
)
ACCOUNT_CODES_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.account_codes ("
    " login text NOT NULL,"
    " purpose text NOT NULL,"
    " code_hash text NOT NULL,"
    " email text NOT NULL,"
    " language text NOT NULL,"
    " application_number text NOT NULL DEFAULT '',"
    " role text,"
    " attempts integer NOT NULL DEFAULT 0,"
    " expires_at timestamptz NOT NULL,"
    " created_at timestamptz NOT NULL,"
    " PRIMARY KEY (login, purpose, application_number))"
)
# Codes were one per (login, purpose): a code for one file replaced the person's code for
# another. Each file gets its own ('' for reset codes). Safe to run again: see migrate.
ACCOUNT_CODES_PER_FILE = (
    "UPDATE {schema}.account_codes SET application_number = '' WHERE application_number IS NULL",
    "ALTER TABLE {schema}.account_codes ALTER COLUMN application_number SET DEFAULT '',"
    " ALTER COLUMN application_number SET NOT NULL,"
    " DROP CONSTRAINT account_codes_pkey,"
    " ADD PRIMARY KEY (login, purpose, application_number)",
)
_CODES_PER_LOGIN = (
    "SELECT is_nullable = 'YES' FROM information_schema.columns"
    " WHERE table_schema = %s AND table_name = 'account_codes'"
    " AND column_name = 'application_number'"
)
SESSIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.sessions ("
    " token_hash bytea PRIMARY KEY,"
    " account_id bigint NOT NULL REFERENCES {schema}.accounts ON DELETE CASCADE,"
    " created_at timestamptz NOT NULL,"
    " expires_at timestamptz NOT NULL,"
    " revoked_at timestamptz)"
)
SESSIONS_INDEX_DDL = (
    "CREATE INDEX IF NOT EXISTS sessions_account_ix ON {schema}.sessions (account_id)"
)
# One row per bucket (a login, an action and a client address): a fading score of
# attempts at a password or a code, and until when the next must wait.
BACKOFF_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.backoff ("
    " bucket bytea PRIMARY KEY,"
    " score double precision NOT NULL,"
    " updated_at timestamptz NOT NULL,"
    " blocked_until timestamptz NOT NULL)"
)
DROP_LOGIN_FAILURES_DDL = "DROP TABLE IF EXISTS {schema}.login_failures"  # per-login lockouts
# Change notifications (docs/notifications.md): on by default, the owner can opt out; the
# notifications projection finds a file's accounts by case.
NOTIFY_DDL = (
    "ALTER TABLE {schema}.accounts ADD COLUMN IF NOT EXISTS notify boolean NOT NULL DEFAULT true"
)
LINKS_BY_CASE_DDL = (
    "CREATE INDEX IF NOT EXISTS account_links_case_ix ON {schema}.account_links (case_id)"
)
DDL = (
    ACCOUNTS_DDL,
    ACCOUNT_LINKS_DDL,
    ACCOUNT_CODES_DDL,
    SESSIONS_DDL,
    SESSIONS_INDEX_DDL,
    BACKOFF_DDL,
    DROP_LOGIN_FAILURES_DDL,
    NOTIFY_DDL,
    LINKS_BY_CASE_DDL,
)


def migrate(conn: Connection[Any], schema: str) -> None:
    """Bring an older schema's tables to this version (inside db init's transaction)."""
    row = conn.execute(_CODES_PER_LOGIN, (schema,)).fetchone()
    if row and row[0]:
        for statement in ACCOUNT_CODES_PER_FILE:
            conn.execute(SQL(statement).format(schema=Identifier(schema)))


class AccountExists(Exception):
    """An account already uses the login: registration never replaces its credentials."""


@dataclass(frozen=True)
class Account:
    account_id: int
    login: str
    kind: str  # "client" (UCI login) or "representative" (email login)
    email: str
    language: str
    notify: bool = True  # change notifications by email (docs/notifications.md)


@dataclass(frozen=True)
class PendingCode:
    code_hash: str
    email: str
    language: str
    application_number: str | None
    role: str | None
    attempts: int


def _q(schema: str, text: str) -> str:
    return SQL(text).format(s=Identifier(schema)).as_string(None)


class AccountsStore:
    """Every statement is one round trip on an autocommit connection of the pool."""

    def __init__(self, pool: AsyncConnectionPool[Any], schema: str) -> None:
        self.pool = pool
        q = lambda text: _q(schema, text)  # noqa: E731
        self._put_code = q(
            "INSERT INTO {s}.account_codes AS c (login, purpose, code_hash, email, language,"
            " application_number, role, attempts, expires_at, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, %s)"
            " ON CONFLICT (login, purpose, application_number) DO UPDATE SET"
            " code_hash = EXCLUDED.code_hash, email = EXCLUDED.email,"
            " language = EXCLUDED.language, role = EXCLUDED.role,"
            " attempts = 0, expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at"
        )
        self._spend_attempt = q(
            "UPDATE {s}.account_codes SET attempts = attempts + 1"
            " WHERE login = %s AND purpose = %s AND attempts < %s AND expires_at > %s"
            " RETURNING code_hash, email, language, application_number, role, attempts"
        )
        self._use_code = q(
            "DELETE FROM {s}.account_codes WHERE login = %s AND purpose = %s AND code_hash = %s"
        )
        self._new_account = q(
            "INSERT INTO {s}.accounts (login, kind, email, language, password_hash,"
            " created_at, password_changed_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (login) DO NOTHING RETURNING account_id"
        )
        self._link = q(
            "INSERT INTO {s}.account_links (account_id, application_number, case_id, role,"
            " linked_at) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (account_id, application_number) DO UPDATE SET role = EXCLUDED.role"
        )
        self._set_password = q(
            "UPDATE {s}.accounts SET password_hash = %s, password_changed_at = %s"
            " WHERE account_id = %s"
        )
        self._revoke_all = q(
            "UPDATE {s}.sessions SET revoked_at = %s WHERE account_id = %s AND revoked_at IS NULL"
        )
        self._by_login = q(
            "SELECT account_id, login, kind, email, language, password_hash"
            " FROM {s}.accounts WHERE login = %s"
        )
        # Only while the account's password is the one checked; FOR SHARE waits for a
        # reset in flight and then sees its new hash (see new_session).
        self._new_session = q(
            "INSERT INTO {s}.sessions (token_hash, account_id, created_at, expires_at)"
            " SELECT %s, account_id, %s, %s FROM {s}.accounts"
            " WHERE account_id = %s AND password_hash = %s FOR SHARE"
        )
        self._session = q(
            "SELECT a.account_id, a.login, a.kind, a.email, a.language, a.notify"
            " FROM {s}.sessions t"
            " JOIN {s}.accounts a ON a.account_id = t.account_id"
            " WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > %s"
        )
        self._set_notify = q("UPDATE {s}.accounts SET notify = %s WHERE account_id = %s")
        self._revoke = q(
            "UPDATE {s}.sessions SET revoked_at = %s WHERE token_hash = %s AND revoked_at IS NULL"
        )
        self._links = q(
            "SELECT l.application_number, l.role, s.view::text"
            " FROM {s}.account_links l LEFT JOIN {s}.case_status s ON s.case_id = l.case_id"
            " WHERE l.account_id = %s ORDER BY l.application_number"
        )
        self._files = q(
            "SELECT case_id, role FROM {s}.account_links WHERE account_id = %s"
            " ORDER BY application_number"
        )
        self._backoff_row = q(
            "INSERT INTO {s}.backoff (bucket, score, updated_at, blocked_until)"
            " VALUES (%s, 0, %s, %s) ON CONFLICT (bucket) DO NOTHING"
        )
        self._backoff_lock = q(
            "SELECT score, updated_at, blocked_until FROM {s}.backoff WHERE bucket = %s FOR UPDATE"
        )
        self._backoff_set = q(
            "UPDATE {s}.backoff SET score = %s, updated_at = %s, blocked_until = %s"
            " WHERE bucket = %s"
        )
        self._backoff_clear = q("DELETE FROM {s}.backoff WHERE bucket = %s")
        self._backoff_sweep = q(
            "DELETE FROM {s}.backoff WHERE updated_at < %s AND blocked_until < %s"
        )

    # ------------------------------------------------------------ codes

    async def put_code(
        self,
        login: str,
        purpose: str,
        code_hash: str,
        email: str,
        language: str,
        expires_at: datetime,
        now: datetime,
        application_number: str | None = None,
        role: str | None = None,
    ) -> None:
        """Store a code; it replaces any earlier code for the same login, purpose and file."""
        async with self.pool.connection() as conn:
            number = application_number or ""
            values = (login, purpose, code_hash, email, language, number, role)
            await conn.execute(self._put_code, (*values, expires_at, now))

    async def spend_attempt(
        self, login: str, purpose: str, max_attempts: int, now: datetime
    ) -> list[PendingCode]:
        """Count one attempt against each live code of the login (one per file) first, so
        racing guesses cannot exceed the limit; empty when there is none (unknown, expired
        or out of attempts)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._spend_attempt, (login, purpose, max_attempts, now))
            rows = await cur.fetchall()
        return [PendingCode(*row) for row in rows]

    async def activate(
        self,
        login: str,
        kind: str,
        code: PendingCode,
        password_hash: str,
        now: datetime,
    ) -> int | None:
        """Use the code once and create the account with its file, atomically.

        None when another request used the code first. An existing account is never
        changed: AccountExists, and the code stays for ``link`` from a session.
        """
        async with self.pool.connection() as conn, conn.transaction():
            if not await self._take_code(conn, login, "register", code.code_hash):
                return None
            cur = await conn.execute(
                self._new_account,
                (login, kind, code.email, code.language, password_hash, now, now),
            )
            row = await cur.fetchone()
            if row is None:
                raise AccountExists  # rolls the transaction back: the code is not used
            account_id = int(row[0])
            await self._add_link(conn, account_id, code, now)
        return account_id

    async def link(self, account: Account, code: PendingCode, now: datetime) -> bool:
        """Use a registration code of the account's own login to add its file; False when
        another request used the code first."""
        async with self.pool.connection() as conn, conn.transaction():
            if not await self._take_code(conn, account.login, "register", code.code_hash):
                return False
            await self._add_link(conn, account.account_id, code, now)
        return True

    async def _add_link(
        self, conn: AsyncConnection[Any], account_id: int, code: PendingCode, now: datetime
    ) -> None:
        number = code.application_number or ""
        await conn.execute(self._link, (account_id, number, case_id(number), code.role, now))

    async def reset_password(
        self, login: str, account_id: int, code: PendingCode, password_hash: str, now: datetime
    ) -> bool:
        """Use the reset code once, set the password and end every session of the account."""
        async with self.pool.connection() as conn, conn.transaction():
            if not await self._take_code(conn, login, "reset", code.code_hash):
                return False
            await conn.execute(self._set_password, (password_hash, now, account_id))
            await conn.execute(self._revoke_all, (now, account_id))
        return True

    async def _take_code(
        self, conn: AsyncConnection[Any], login: str, purpose: str, code_hash: str
    ) -> bool:
        cur = await conn.execute(self._use_code, (login, purpose, code_hash))
        return cur.rowcount == 1

    # ------------------------------------------------------------ accounts and sessions

    async def account(self, login: str) -> tuple[Account, str] | None:
        """The account and its password hash."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._by_login, (login,))
            row = await cur.fetchone()
        if row is None:
            return None
        return Account(*row[:5]), row[5]

    async def new_session(
        self,
        account_id: int,
        checked_hash: str,
        token_hash: bytes,
        now: datetime,
        expires_at: datetime,
    ) -> bool:
        """Start a session, unless the password checked (``checked_hash``) was changed
        meanwhile: a reset signs out the sessions that exist when it runs, so one started
        later from the old password's check must not be (False)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                self._new_session, (token_hash, now, expires_at, account_id, checked_hash)
            )
            return cur.rowcount == 1

    async def session_account(self, token_hash: bytes, now: datetime) -> Account | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._session, (token_hash, now))
            row = await cur.fetchone()
        return Account(*row) if row else None

    async def set_notify(self, account_id: int, notify: bool) -> None:
        """Opt out of change notifications (False) or back in (True)."""
        async with self.pool.connection() as conn:
            await conn.execute(self._set_notify, (notify, account_id))

    async def revoke_session(self, token_hash: bytes, now: datetime) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(self._revoke, (now, token_hash))

    async def links(self, account_id: int) -> list[dict[str, Any]]:
        """The account's files with their overall status and last update as each role sees them."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._links, (account_id,))
            rows = await cur.fetchall()
        found = []
        for number, role, view in rows:
            shown = case_status.for_role(orjson.loads(view), role) if view else {}
            found.append(
                {
                    "application_number": number,
                    "role": role,
                    "status": shown.get("status"),
                    "last_updated": shown.get("last_updated"),
                }
            )
        return found

    async def linked_files(self, account_id: int) -> list[tuple[UUID, str]]:
        """(case id, role) of each of the account's files: whose family names the password
        policy reads from the log."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._files, (account_id,))
            rows = await cur.fetchall()
        return [(row[0], row[1]) for row in rows]

    # ------------------------------------------------------------ backoff

    async def attempt(self, bucket: bytes, now: datetime, policy: Backoff) -> datetime | None:
        """Count an attempt before its password or code is checked (so parallel guesses are
        all counted), or refuse it: returns the end of the wait when the bucket must wait."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(self._backoff_row, (bucket, now, now))
            cur = await conn.execute(self._backoff_lock, (bucket,))
            row = await cur.fetchone()
            assert row is not None
            score, updated_at, blocked_until = row
            if blocked_until > now:
                return blocked_until
            score = policy.decayed(score, now - updated_at) + 1
            until = now + policy.wait_after(score)
            await conn.execute(self._backoff_set, (score, now, until, bucket))
            if secrets.randbelow(_SWEEP_ONE_IN) == 0:
                await conn.execute(self._backoff_sweep, (now - timedelta(days=1), now))
        return None

    async def forget(self, bucket: bytes) -> None:
        """The owner got in from there: forget that bucket's attempts."""
        async with self.pool.connection() as conn:
            await conn.execute(self._backoff_clear, (bucket,))


def erase_accounts(
    conn: Connection[Any],
    schema: str,
    files: Sequence[tuple[UUID, str, str]],
    logins: Sequence[str],
    now: datetime,
) -> int:
    """Erasure, inside the caller's transaction: the erased (case id, role) pairs leave
    every account's files; an account whose login is an erased person's (``logins``), or
    that has no file left, is disabled: login and email replaced by a random tombstone, no
    usable password, sessions revoked; pending codes for them or for those files are
    deleted. ``files``: (case id, role, application number). How many were disabled."""
    q = partial(_q, schema)
    curs = conn.cursor(row_factory=tuple_row)
    curs.execute(
        q(
            "DELETE FROM {s}.account_links l USING unnest(%b::uuid[], %b::text[]) AS e(c, r)"
            " WHERE l.case_id = e.c AND l.role = e.r"
        ),
        ([f[0] for f in files], [f[1] for f in files]),
    )
    disabled = curs.execute(
        q(
            "WITH gone AS (SELECT account_id, login FROM {s}.accounts a"
            " WHERE a.kind <> 'erased' AND (a.login = ANY(%b) OR NOT EXISTS"
            " (SELECT FROM {s}.account_links l WHERE l.account_id = a.account_id)) FOR UPDATE)"
            " UPDATE {s}.accounts a SET kind = 'erased', login = 'erased:' || md5(random()::text"
            " || a.account_id), email = '', password_hash = '!' FROM gone"
            " WHERE a.account_id = gone.account_id RETURNING gone.account_id, gone.login"
        ),
        (list(logins),),
    ).fetchall()
    ids = [r[0] for r in disabled]
    curs.execute(
        q(
            "UPDATE {s}.sessions SET revoked_at = %s"
            " WHERE revoked_at IS NULL AND account_id = ANY(%b)"
        ),
        (now, ids),
    )
    # Their webhook endpoints go too (URL and secret): pending deliveries to them are
    # dead-lettered when due, as for a deleted endpoint, and nothing more is sent.
    curs.execute(q("DELETE FROM {s}.webhook_endpoints WHERE account_id = ANY(%b)"), (ids,))
    curs.execute(
        q("DELETE FROM {s}.account_codes WHERE login = ANY(%b) OR application_number = ANY(%b)"),
        (list(logins) + [r[1] for r in disabled], [f[2] for f in files]),
    )
    return len(ids)

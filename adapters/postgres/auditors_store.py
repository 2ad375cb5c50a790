"""Auditors: named API keys (stored as SHA-256) and the log of every auditor read.

``add``, ``revoke`` and ``listed`` run from the command line (synchronous); the
API looks keys up, appends to the audit log and pages through it asynchronously. The audit log is
append-only: who (auditor id and name), what (action, application number,
parameters, answer status) and when.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from domain.accounts import AUDITOR_PREFIX, new_token, token_digest

AUDITORS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.auditors ("
    " auditor_id bigserial PRIMARY KEY,"
    " name text NOT NULL UNIQUE,"
    " key_hash bytea NOT NULL UNIQUE,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " revoked_at timestamptz)"
)
AUDIT_LOG_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.audit_log ("
    " id bigserial PRIMARY KEY,"
    " auditor_id bigint NOT NULL REFERENCES {schema}.auditors,"
    " auditor_name text NOT NULL,"
    " action text NOT NULL,"
    " application_number text,"
    " parameters jsonb NOT NULL,"
    " status integer NOT NULL,"
    " request_id text NOT NULL,"
    " at timestamptz NOT NULL)"
)
DDL = (AUDITORS_DDL, AUDIT_LOG_DDL)

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class InvalidAuditorName(ValueError):
    def __init__(self) -> None:
        super().__init__("NAME must be 1-64 lowercase letters, digits, dots, dashes or underscores")


class AuditorExists(ValueError):
    def __init__(self) -> None:
        super().__init__("an auditor with that name exists; revoke it first or pick another")


@dataclass(frozen=True)
class Auditor:
    auditor_id: int
    name: str


def add(url: str, schema: str, name: str) -> str:
    """Create an auditor; returns its API key, which is shown once and never stored."""
    if not NAME.fullmatch(name):
        raise InvalidAuditorName()
    key = new_token(AUDITOR_PREFIX)
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(
                SQL("INSERT INTO {}.auditors (name, key_hash) VALUES (%s, %s)").format(
                    Identifier(schema)
                ),
                (name, token_digest(key)),
            )
        except psycopg.errors.UniqueViolation:
            raise AuditorExists() from None
    return key


def revoke(url: str, schema: str, name: str) -> bool:
    """Revoke an auditor's key; the name stays taken so the audit log keeps its meaning."""
    if not NAME.fullmatch(name):
        raise InvalidAuditorName()
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(
            SQL(
                "UPDATE {}.auditors SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL"
            ).format(Identifier(schema)),
            (name,),
        )
        return cur.rowcount == 1


def listed(url: str, schema: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(
            SQL("SELECT name, created_at, revoked_at FROM {}.auditors ORDER BY auditor_id").format(
                Identifier(schema)
            )
        )
        return [
            {"name": n, "created_at": c.isoformat(), "revoked_at": r.isoformat() if r else None}
            for n, c, r in cur.fetchall()
        ]


class AuditorsStore:
    def __init__(self, pool: AsyncConnectionPool[Any], schema: str) -> None:
        self.pool = pool
        ident = Identifier(schema)
        self._by_key = (
            SQL(
                "SELECT auditor_id, name FROM {}.auditors"
                " WHERE key_hash = %s AND revoked_at IS NULL"
            )
            .format(ident)
            .as_string(None)
        )
        self._log = (
            SQL(
                "INSERT INTO {}.audit_log (auditor_id, auditor_name, action, application_number,"
                " parameters, status, request_id, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            )
            .format(ident)
            .as_string(None)
        )
        self._read_log = (
            SQL(
                "SELECT id, auditor_name, action, application_number, parameters, status,"
                " request_id, at FROM {}.audit_log WHERE id < %s ORDER BY id DESC LIMIT %s"
            )
            .format(ident)
            .as_string(None)
        )

    async def by_key(self, key_hash: bytes) -> Auditor | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._by_key, (key_hash,))
            row = await cur.fetchone()
        return Auditor(*row) if row else None

    async def log(
        self,
        auditor: Auditor,
        action: str,
        application_number: str | None,
        parameters: dict[str, Any],
        status: int,
        request_id: str,
        at: datetime,
    ) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                self._log,
                (
                    auditor.auditor_id,
                    auditor.name,
                    action,
                    application_number,
                    Jsonb(parameters),
                    status,
                    request_id,
                    at,
                ),
            )

    async def entries(self, before: int, limit: int) -> list[dict[str, Any]]:
        """Audit log entries, newest first, with ids below ``before`` (for paging)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._read_log, (before, limit))
            rows = await cur.fetchall()
        names = ("id", "auditor", "action", "application_number", "parameters", "status")
        return [
            {
                **dict(zip(names, row[:6], strict=True)),
                "request_id": row[6],
                "at": row[7].isoformat(),
            }
            for row in rows
        ]

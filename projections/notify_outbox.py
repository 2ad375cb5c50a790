"""The notification outbox: every message to send, written by the notifications
projection in the same transaction as its position, sent and marked by `casetrack notify`.

One row per (case, version, channel, recipient): ``channel`` is ``email`` (``recipient``
an account) or ``webhook`` (an endpoint). Rows are inserted ``ON CONFLICT DO NOTHING``,
and a row is never deleted: applying an event again (after a crash, or in a rebuild's
catch-up) finds its rows there and writes nothing twice. Recipients are those linked
(account_links.linked_at, webhook_endpoints.created_at) when the event was recorded, so
applying an event again, whenever, names the same ones: a later link never receives the
file's past. This table is not one of the projection's view tables, so a rebuild never
drops it (docs/notifications.md).

States: ``pending`` (due at ``due_at``), ``sent``, ``skipped`` (the account opted out or
is gone: nothing sent), ``dead`` (kept failing for ``GIVE_UP``). Settled rows are deleted
after CASETRACK_NOTIFY_KEEP_DAYS (``prune``). The SQL of this table is
here, the projection's writes and the notifier's claims alike (like projections/positions);
it reads account_links, accounts and webhook_endpoints (their owners create them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg.types.json import Jsonb

CHANNEL = "casetrack_notify"  # NOTIFY'd when rows go in: `casetrack notify` wakes at once
GIVE_UP = timedelta(days=3)
EMAIL, WEBHOOK = "email", "webhook"

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.notify_outbox ("
    " id bigserial PRIMARY KEY,"
    " case_id uuid NOT NULL,"
    " version bigint NOT NULL,"
    " channel text NOT NULL,"
    " recipient bigint NOT NULL,"
    " role text NOT NULL,"
    " application_number text NOT NULL,"
    " language text NOT NULL,"
    " change jsonb NOT NULL,"
    " recorded_at timestamptz NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " state text NOT NULL DEFAULT 'pending',"
    " due_at timestamptz NOT NULL DEFAULT now(),"
    " attempts integer NOT NULL DEFAULT 0,"
    " last_error text,"
    " sent_at timestamptz,"
    " UNIQUE (case_id, version, channel, recipient))",
    # Each claim reads a few index entries, however many rows wait (an outage, a window).
    "DROP INDEX IF EXISTS {schema}.notify_outbox_due_ix",
    "CREATE INDEX IF NOT EXISTS notify_outbox_webhook_due_ix ON {schema}.notify_outbox"
    " (due_at, id) WHERE state = 'pending' AND channel = 'webhook'",
    "CREATE INDEX IF NOT EXISTS notify_outbox_webhook_endpoint_ix ON {schema}.notify_outbox"
    " (recipient) WHERE state = 'pending' AND channel = 'webhook'",
    "CREATE INDEX IF NOT EXISTS notify_outbox_email_age_ix ON {schema}.notify_outbox"
    " (created_at) WHERE state = 'pending' AND channel = 'email'",
    "CREATE INDEX IF NOT EXISTS notify_outbox_email_account_ix ON {schema}.notify_outbox"
    " (recipient, id) WHERE state = 'pending' AND channel = 'email'",
    "CREATE INDEX IF NOT EXISTS notify_outbox_settled_ix ON {schema}.notify_outbox"
    " (created_at) WHERE state <> 'pending'",
)


@dataclass(frozen=True)
class Pending:
    """One change to announce to everyone linked to its file in ``role``."""

    case_id: UUID
    version: int
    role: str
    application_number: str
    language: str
    change: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True)
class Row:
    id: int
    case_id: UUID
    version: int
    recipient: int
    role: str
    application_number: str
    language: str
    change: dict[str, Any]
    created_at: datetime
    attempts: int


@dataclass(frozen=True)
class EmailGroup:
    """An account's pending changes, to send as one message (rows locked until commit)."""

    account_id: int
    email: str
    language: str
    wants: bool  # False: opted out, or the account is erased
    rows: list[Row]

    @property
    def message_id(self) -> str:
        """The same for the same rows: a resend after a crash repeats it (RFC 5322)."""
        ids = ",".join(str(r.id) for r in sorted(self.rows, key=lambda r: r.id))
        return f"<{hashlib.sha256(ids.encode()).hexdigest()[:32]}.notify@casetrack.invalid>"


@dataclass(frozen=True)
class Delivery:
    """A webhook row with its endpoint (url None: the endpoint was deleted)."""

    row: Row
    url: str | None
    secret: str | None
    disabled: bool
    failing_since: datetime | None

    @property
    def message_id(self) -> str:
        """Stable for the change and endpoint: the receiver deduplicates on it."""
        r = self.row
        return f"msg_{r.case_id.hex}_{r.version}_{r.recipient}"


_ROW = (
    "o.id, o.case_id, o.version, o.recipient, o.role, o.application_number, o.language,"
    " o.change, o.created_at, o.attempts"
)


def _row(r: DictRow) -> Row:
    return Row(
        r["id"], r["case_id"], r["version"], r["recipient"], r["role"],
        r["application_number"], r["language"], r["change"], r["created_at"], r["attempts"],
    )  # fmt: skip


class Outbox:
    """The outbox's SQL in ``schema``; each method runs in the caller's transaction."""

    def __init__(self, schema: str) -> None:
        s = Identifier(schema)

        def f(text: str) -> Composed:
            return SQL(text).format(s=s)

        self._linked = f("SELECT DISTINCT case_id FROM {s}.account_links WHERE case_id = ANY(%s)")
        self._insert = f(
            "INSERT INTO {s}.notify_outbox (case_id, version, channel, recipient, role,"
            " application_number, language, change, recorded_at)"
            " SELECT l.case_id, %(version)s, 'email', l.account_id, l.role,"
            " %(number)s, %(language)s, %(change)s, %(at)s FROM {s}.account_links l"
            " WHERE l.case_id = %(case)s AND l.role = %(role)s AND l.linked_at <= %(at)s"
            " UNION ALL"
            " SELECT l.case_id, %(version)s, 'webhook', w.endpoint_id, l.role,"
            " %(number)s, %(language)s, %(change)s, %(at)s FROM {s}.account_links l"
            " JOIN {s}.webhook_endpoints w ON w.account_id = l.account_id"
            " WHERE l.case_id = %(case)s AND l.role = %(role)s AND l.linked_at <= %(at)s"
            " AND w.created_at <= %(at)s AND w.disabled_at IS NULL AND %(type)s = ANY(w.events)"
            " ON CONFLICT (case_id, version, channel, recipient) DO NOTHING"
        )
        self._notify = SQL("SELECT pg_notify(%s, '')")
        self._linked_cases = f("SELECT DISTINCT case_id FROM {s}.account_links")
        # A rebuild's staged changes (projections/notifications), as _insert makes rows.
        self._add_staged = (
            "INSERT INTO {s}.notify_outbox (case_id, version, channel, recipient, role,"
            " application_number, language, change, recorded_at)"
            " SELECT case_id, version, channel, recipient, role, application_number, language,"
            " change, recorded_at FROM ("
            " SELECT c.*, 'email' AS channel, l.account_id AS recipient FROM {staged} c"
            " JOIN {s}.account_links l ON l.case_id = c.case_id AND l.role = c.role"
            " AND l.linked_at <= c.recorded_at"
            " UNION ALL"
            " SELECT c.*, 'webhook', w.endpoint_id FROM {staged} c"
            " JOIN {s}.account_links l ON l.case_id = c.case_id AND l.role = c.role"
            " AND l.linked_at <= c.recorded_at"
            " JOIN {s}.webhook_endpoints w ON w.account_id = l.account_id"
            " WHERE w.created_at <= c.recorded_at AND w.disabled_at IS NULL"
            " AND c.change->>'type' = ANY(w.events)) staged"
            " ORDER BY recorded_at, case_id, version, channel, recipient"
            " ON CONFLICT (case_id, version, channel, recipient) DO NOTHING"
        )
        self._schema = s
        # An account is due once its oldest pending change has waited the window: the
        # oldest pending rows (by the index) name the due accounts, oldest first.
        self._due_accounts = f(
            "SELECT recipient FROM (SELECT recipient, created_at FROM {s}.notify_outbox"
            " WHERE channel = 'email' AND state = 'pending'"
            " AND created_at <= now() - make_interval(secs => %s) AND due_at <= now()"
            " ORDER BY created_at LIMIT %s) oldest"
            " GROUP BY recipient ORDER BY min(created_at) LIMIT %s"
        )
        # One statement: the account's advisory lock (another notifier holding it gets
        # nothing; ids past 2^31 wrap, and a collision only makes one notifier skip an
        # account for a round), its due rows locked, and where and whether to send them.
        self._group = f(
            "WITH held AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(%s::int4,"
            " (%s::bigint %% 2147483647)::int4) AS locked)"
            " SELECT " + _ROW + ", a.email AS email, a.language AS account_language,"
            " coalesce(a.kind <> 'erased' AND a.email <> '' AND a.notify, false) AS wants"
            " FROM held, {s}.notify_outbox o"
            " LEFT JOIN {s}.accounts a ON a.account_id = o.recipient"
            " WHERE held.locked AND o.channel = 'email' AND o.recipient = %s"
            " AND o.state = 'pending' AND o.due_at <= now()"
            " ORDER BY o.id FOR UPDATE OF o SKIP LOCKED"
        )
        self._delivery = f(
            "SELECT " + _ROW + ", w.url, w.secret, w.disabled_at IS NOT NULL AS disabled,"
            " w.failing_since FROM {s}.notify_outbox o"
            " LEFT JOIN {s}.webhook_endpoints w ON w.endpoint_id = o.recipient"
            " WHERE o.id = (SELECT id FROM {s}.notify_outbox"
            " WHERE channel = 'webhook' AND state = 'pending' AND due_at <= now()"
            " ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        )
        self._done = f(
            "UPDATE {s}.notify_outbox SET state = %s, sent_at = now(), attempts = attempts + 1,"
            " last_error = NULL WHERE id = ANY(%s)"
        )
        self._failed = f(
            "UPDATE {s}.notify_outbox SET attempts = attempts + 1, last_error = %s,"
            " due_at = now() + make_interval(secs => %s),"
            " state = CASE WHEN created_at < now() - %s THEN 'dead' ELSE 'pending' END"
            " WHERE id = ANY(%s) RETURNING state"
        )
        self._hold_endpoint = f(
            "UPDATE {s}.notify_outbox SET due_at = greatest(due_at, now() + make_interval(secs"
            " => %s)) WHERE channel = 'webhook' AND recipient = %s AND state = 'pending'"
        )
        self._dead = f(
            "UPDATE {s}.notify_outbox SET state = 'dead', last_error = %s WHERE id = ANY(%s)"
        )
        self._prune = f(
            "DELETE FROM {s}.notify_outbox WHERE id IN (SELECT id FROM {s}.notify_outbox"
            " WHERE state <> 'pending' AND created_at < now() - make_interval(days => %s)"
            " LIMIT %s)"
        )
        self._list = f(
            "SELECT id, application_number, recipient AS endpoint_id, state, attempts,"
            " created_at, due_at, sent_at, last_error FROM {s}.notify_outbox"
            " WHERE channel = 'webhook' AND (%s::text IS NULL OR state = %s)"
            " ORDER BY id DESC LIMIT %s"
        )
        self._redeliver = f(
            "UPDATE {s}.notify_outbox SET state = 'pending', due_at = now(), attempts = 0,"
            " created_at = now(), last_error = NULL"
            " WHERE id = %s AND channel = 'webhook' RETURNING recipient"
        )

    # ---------------------------------------------------------------- the projection

    def linked(self, curs: Cursor[DictRow], case_ids: Sequence[UUID]) -> set[UUID]:
        """The cases of ``case_ids`` that any account is linked to (only they can have
        recipients)."""
        curs.execute(self._linked, (list(case_ids),))
        return {r["case_id"] for r in curs.fetchall()}

    def linked_cases(self, curs: Cursor[DictRow]) -> list[UUID]:
        """Every case some account is linked to."""
        curs.execute(self._linked_cases)
        return [r["case_id"] for r in curs.fetchall()]

    def add_staged(self, curs: Cursor[DictRow], staged: Composed) -> None:
        """Rows for the changes in the table ``staged`` (Pending's columns), as ``add``
        would make them, once; wakes the notifiers at commit."""
        curs.execute(SQL(self._add_staged).format(s=self._schema, staged=staged))
        if curs.rowcount:
            curs.execute(self._notify, (CHANNEL,))

    def add(self, curs: Cursor[DictRow], pending: Sequence[Pending]) -> None:
        """Rows for each change's recipients, once; wakes the notifiers at commit."""
        if not pending:
            return
        curs.executemany(
            self._insert,
            [
                {
                    "case": p.case_id,
                    "version": p.version,
                    "role": p.role,
                    "number": p.application_number,
                    "language": p.language,
                    "change": Jsonb(p.change),
                    "type": p.change["type"],
                    "at": p.recorded_at,
                }
                for p in pending
            ],
        )
        curs.execute(self._notify, (CHANNEL,))

    # ---------------------------------------------------------------- the notifier

    def due_accounts(self, curs: Cursor[DictRow], group_seconds: float, limit: int) -> list[int]:
        """Accounts whose oldest pending change has waited the grouping window."""
        curs.execute(self._due_accounts, (group_seconds, limit * 20, limit))
        return [r["recipient"] for r in curs.fetchall()]

    def claim_group(self, curs: Cursor[DictRow], account_id: int) -> EmailGroup | None:
        """The account's due rows, locked; None when another notifier holds the account."""
        curs.execute(self._group, (0x4E4F5449, account_id, account_id))
        found = curs.fetchall()
        if not found:
            return None
        first = found[0]
        return EmailGroup(
            account_id,
            first["email"] or "",
            first["account_language"] or "en",
            bool(first["wants"]),
            [_row(r) for r in found],
        )

    def claim_delivery(self, curs: Cursor[DictRow]) -> Delivery | None:
        """The next due webhook row, locked (other notifiers skip it)."""
        curs.execute(self._delivery)
        r = curs.fetchone()
        if r is None:
            return None
        return Delivery(_row(r), r["url"], r["secret"], bool(r["disabled"]), r["failing_since"])

    def done(self, curs: Cursor[DictRow], ids: Sequence[int], state: str = "sent") -> None:
        curs.execute(self._done, (state, list(ids)))

    def failed(self, curs: Cursor[DictRow], ids: Sequence[int], error: str, delay: float) -> bool:
        """Try again after ``delay`` seconds; True when the rows were dead-lettered instead
        (they kept failing for GIVE_UP)."""
        curs.execute(self._failed, (error, delay, GIVE_UP, list(ids)))
        return any(r["state"] == "dead" for r in curs.fetchall())

    def hold_endpoint(self, curs: Cursor[DictRow], endpoint_id: int, delay: float) -> None:
        """Every pending delivery to a failing endpoint waits as long as the one that failed:
        an endpoint that is down costs one attempt per pause, not one per delivery."""
        curs.execute(self._hold_endpoint, (delay, endpoint_id))

    def dead(self, curs: Cursor[DictRow], ids: Sequence[int], error: str) -> None:
        curs.execute(self._dead, (error, list(ids)))

    def prune(self, curs: Cursor[DictRow], keep_days: int, limit: int = 10_000) -> int:
        """Delete up to ``limit`` settled rows (sent, skipped, dead) older than ``keep_days``;
        how many. Safe for exactly-once: a committed event is never applied again (a
        rebuild announces only what follows the live position it read when it began), so
        no old row is needed to stop a resend."""
        curs.execute(self._prune, (keep_days, limit))
        return curs.rowcount

    # ---------------------------------------------------------------- operators

    def deliveries(
        self, curs: Cursor[DictRow], state: str | None, limit: int
    ) -> list[dict[str, Any]]:
        curs.execute(self._list, (state, state, limit))
        return [dict(r) for r in curs.fetchall()]

    def redeliver(self, curs: Cursor[DictRow], delivery_id: int) -> int | None:
        """Send a webhook delivery again from now (with three more days of retries);
        its endpoint id, None when there is no such delivery."""
        curs.execute(self._redeliver, (delivery_id,))
        row = curs.fetchone()
        return None if row is None else int(row["recipient"])


def ident(schema: str) -> Composed:
    return SQL("{}.notify_outbox").format(Identifier(schema))

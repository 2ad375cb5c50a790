"""The one statement that changes stored events: the payloads the sanctioned rewrite seals.

Events are append-only everywhere else. Sealing the personal data of a log written before
casetrack encrypted it (adapters.privacy.log_sealing) replaces the payloads of the events
that still hold plaintext, under the events' table lock, in the transaction that rehashes
their cases and advances the rewrite's epoch (docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from domain.integrity.stored import StoredRow

_TOKEN = b'"pd1:'  # a sealed value's start (adapters.privacy.field_cipher), quoted
_PERSONAL_TOPICS = ("%Received", "%CorrespondenceSent")  # personal_codec's topics


class StoredPayloads:
    """The SQL of the rewrite, on the caller's cursor."""

    def __init__(self, schema: str, events_table: str) -> None:
        events = SQL("{}.{}").format(Identifier(schema), Identifier(events_table))
        self._lock = SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(events)
        # An event that holds a sealed value holds only sealed ones (the writer seals all of
        # an event's values): those without any token are the ones left to look at.
        self._unsealed = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
            " WHERE notification_id > %s AND (topic LIKE %s OR topic LIKE %s)"
            " AND position(%s::bytea IN state) = 0 ORDER BY notification_id LIMIT %s"
        ).format(events)
        self._replace = SQL(
            "UPDATE {} e SET state = n.state FROM unnest(%b::int8[], %b::bytea[])"
            " AS n(notification_id, state) WHERE e.notification_id = n.notification_id"
        ).format(events)

    def lock(self, curs: Cursor[DictRow]) -> None:
        """The writers' lock: no event is appended while the rewrite's batch runs."""
        curs.execute(self._lock)

    def without_tokens(self, curs: Cursor[DictRow], after: int, limit: int) -> list[StoredRow]:
        """Up to `limit` events of the personal-data topics after notification id `after`
        that hold no sealed value, in log order."""
        curs.execute(self._unsealed, (after, *_PERSONAL_TOPICS, _TOKEN, limit))
        return [
            StoredRow(
                r["notification_id"],
                r["originator_id"],
                r["originator_version"],
                r["topic"],
                bytes(r["state"]),
            )
            for r in curs.fetchall()
        ]

    def replace(self, curs: Cursor[DictRow], rows: Sequence[StoredRow]) -> None:
        """Store these rows' payloads in place of their events' (same notification ids)."""
        curs.execute(self._replace, ([r.notification_id for r in rows], [r.state for r in rows]))

"""Where each projection stands: every statement on projection_positions and
projection_dead_letters, and the one definition of lag.

A projection's position (the last notification id it applied) is stored in the
transaction that writes its view rows, so a crash at any moment resumes without
skipping or double-applying; the row is locked for a page, so two projectors never
apply a page twice. A halt (``halted_at``) stops a projection at an event until
``resume``. A rebuild's shadow (``<name>__next``) has a position and dead letters of
its own until the swap hands them over to the live name.

``Positions`` owns the SQL, as eventsourcing's recorders do; the HTTP API reads
the same ``standing_statement`` on its async pool and builds the same ``Standing``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

POSITIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.projection_positions ("
    " name text PRIMARY KEY,"
    " position bigint NOT NULL DEFAULT 0,"
    " halted_at bigint,"
    " last_error text,"
    " last_error_at timestamptz,"
    " updated_at timestamptz NOT NULL DEFAULT now())"
)
DEAD_LETTERS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.projection_dead_letters ("
    " id bigserial PRIMARY KEY,"
    " projection text NOT NULL,"
    " position bigint NOT NULL,"
    " case_id uuid NOT NULL,"
    " event_type text NOT NULL,"
    " error text NOT NULL,"
    " recorded_at timestamptz NOT NULL DEFAULT now(),"
    " UNIQUE (projection, position))"
)
DDL = (POSITIONS_DDL, DEAD_LETTERS_DDL)


def lag(head: int, position: int) -> int:
    """Events a projection at ``position`` is behind the log's ``head``: head minus
    position, O(1) whatever the backlog. Positions are notification ids, which skip
    only the ids of an insert that rolled back, so this may overstate the lag by those
    (never understate it); it is 0 exactly when the projection is caught up."""
    return max(head - position, 0)


def standing_statement(schema: str) -> Composed:
    """The standing of each projection named in the one parameter (a list), with its
    dead letters counted; a projection that never ran has no row."""
    return SQL(
        "SELECT p.name, p.position, p.halted_at, p.last_error, p.last_error_at,"
        " (SELECT count(*) FROM {s}.projection_dead_letters d WHERE d.projection = p.name)"
        " FROM {s}.projection_positions p WHERE p.name = ANY(%b)"
    ).format(s=Identifier(schema))


@dataclass(frozen=True)
class Standing:
    name: str
    position: int = 0
    halted_at: int | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    dead_letters: int = 0


def standings(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[Standing]:
    """One ``Standing`` per name, in order, from the rows of ``standing_statement``
    (as tuples); a projection with no row stands at 0."""
    found = {str(r[0]): Standing(str(r[0]), int(r[1]), r[2], r[3], r[4], int(r[5])) for r in rows}
    return [found.get(name) or Standing(name) for name in names]


class Positions:
    """The SQL of projection positions and projection dead letters in ``schema``;
    each method runs in the caller's transaction."""

    def __init__(self, schema: str) -> None:
        s = Identifier(schema)
        self._standing = standing_statement(schema)
        self._insert = SQL(
            "INSERT INTO {}.projection_positions (name) VALUES (%s) ON CONFLICT (name) DO NOTHING"
        ).format(s)
        self._lock = SQL(
            "SELECT position, halted_at FROM {}.projection_positions WHERE name = %s FOR UPDATE"
        ).format(s)
        self._select = SQL("SELECT position FROM {}.projection_positions WHERE name = %s").format(s)
        self._advance = SQL(
            "UPDATE {}.projection_positions SET position = %s, updated_at = now() WHERE name = %s"
        ).format(s)
        self._halt = SQL(
            "UPDATE {}.projection_positions SET halted_at = %s, last_error = %s,"
            " last_error_at = now() WHERE name = %s"
        ).format(s)
        self._resume = SQL(
            "UPDATE {}.projection_positions SET halted_at = NULL WHERE name = %s"
        ).format(s)
        self._dead_letter = SQL(
            "INSERT INTO {}.projection_dead_letters"
            " (projection, position, case_id, event_type, error) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (projection, position) DO UPDATE SET error = EXCLUDED.error,"
            " recorded_at = now()"
        ).format(s)
        self._last_error = SQL(
            "UPDATE {}.projection_positions SET last_error = %s, last_error_at = now()"
            " WHERE name = %s"
        ).format(s)
        self._start = SQL(
            "INSERT INTO {}.projection_positions (name, position) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position,"
            " halted_at = NULL, last_error = NULL"
        ).format(s)
        self._delete = SQL("DELETE FROM {}.projection_positions WHERE name = %s").format(s)
        self._delete_dead_letters = SQL(
            "DELETE FROM {}.projection_dead_letters WHERE projection = %s"
        ).format(s)
        self._move_dead_letters = SQL(
            "UPDATE {}.projection_dead_letters SET projection = %s WHERE projection = %s"
        ).format(s)
        self._take_over = SQL(
            "UPDATE {s}.projection_positions p SET position = %s, halted_at = NULL,"
            " last_error = n.last_error, last_error_at = n.last_error_at,"
            " updated_at = now() FROM {s}.projection_positions n"
            " WHERE p.name = %s AND n.name = %s"
        ).format(s=s)

    def lock(self, curs: Cursor[DictRow], name: str) -> tuple[int, bool]:
        """Lock ``name``'s position row for the transaction (made at 0 if new):
        (position, halted)."""
        curs.execute(self._insert, (name,))
        curs.execute(self._lock, (name,))
        row = curs.fetchone()
        assert row is not None
        return int(row["position"]), row["halted_at"] is not None

    def position(self, curs: Cursor[DictRow], name: str) -> int:
        curs.execute(self._select, (name,))
        row = curs.fetchone()
        return int(row["position"]) if row else 0

    def advance(self, curs: Cursor[DictRow], name: str, position: int) -> None:
        curs.execute(self._advance, (position, name))

    def halt(self, curs: Cursor[DictRow], name: str, at: int, error: str) -> None:
        """Stop ``name`` at the event at position ``at`` until ``resume``."""
        curs.execute(self._halt, (at, error, name))

    def resume(self, curs: Cursor[DictRow], name: str) -> None:
        """Clear a halt: the projection retries from the event it stopped at."""
        curs.execute(self._resume, (name,))

    def dead_letter(
        self,
        curs: Cursor[DictRow],
        name: str,
        position: int,
        case_id: UUID,
        event_type: str,
        error: str,
    ) -> None:
        """Record that ``name`` skipped the event at ``position``; ``error`` is its last."""
        curs.execute(self._dead_letter, (name, position, case_id, event_type, error))
        curs.execute(self._last_error, (error, name))

    def start(self, curs: Cursor[DictRow], name: str, position: int) -> None:
        """Set ``name`` at ``position``, not halted, no last error: a replay's shadow."""
        curs.execute(self._start, (name, position))

    def forget(self, curs: Cursor[Any], name: str) -> None:
        """Delete ``name``'s position and dead letters (its tables are gone)."""
        curs.execute(self._delete, (name,))
        curs.execute(self._delete_dead_letters, (name,))

    def hand_over(self, curs: Cursor[DictRow], shadow: str, live: str, position: int) -> None:
        """The swap: ``live`` takes ``shadow``'s dead letters and last error, at ``position``;
        the old live dead letters and the shadow's position row go."""
        curs.execute(self._delete_dead_letters, (live,))
        curs.execute(self._move_dead_letters, (live, shadow))
        curs.execute(self._take_over, (position, live, shadow))
        curs.execute(self._delete, (shadow,))

    def standings(self, curs: Cursor[DictRow], names: Sequence[str]) -> list[Standing]:
        curs.execute(self._standing, (list(names),))
        return standings(names, (tuple(row.values()) for row in curs.fetchall()))

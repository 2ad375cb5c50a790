"""The SQL of personal-data keys: subjects, their wrapped data keys, erased people.

- privacy_subjects: one subject per person on a file ((case_id, role) is unique), a
  random UUID that names the key without naming the person; ``person`` is the blind
  index of their UCI (a representative's email), so an erasure by UCI finds every file.
- data_keys: each subject's 256-bit AES key, wrapped by the KEK (adapters.privacy.kek).
  Erasure sets ``wrapped`` to NULL and ``destroyed_at``: the key is gone for good, the row
  says when (crypto-shredding; a backup taken before still holds the wrapped key, which
  is why backups must expire: docs/privacy.md).
- erased_people: the tombstones of people erased by UCI: a new file for one of them is
  dead-lettered (reason personal_data_erased) until an operator lifts the tombstone.

Nothing here is personal data: subject ids are random, ``person`` is an HMAC.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import Cursor
from psycopg.sql import SQL, Identifier

from adapters.privacy.kek import KEY_BYTES, KekError, KeyEncryptionKey

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.privacy_subjects ("
    " subject_id uuid PRIMARY KEY,"
    " case_id uuid NOT NULL,"
    " role text NOT NULL,"
    " person bytea,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " UNIQUE (case_id, role))",
    "CREATE INDEX IF NOT EXISTS privacy_subjects_person ON {schema}.privacy_subjects (person)",
    "CREATE TABLE IF NOT EXISTS {schema}.data_keys ("
    " subject_id uuid PRIMARY KEY REFERENCES {schema}.privacy_subjects,"
    " wrapped bytea,"
    " kek_id text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " destroyed_at timestamptz,"
    " CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL)))",
    "CREATE TABLE IF NOT EXISTS {schema}.erased_people ("
    " person bytea PRIMARY KEY,"
    " erased_at timestamptz NOT NULL DEFAULT now(),"
    " reason text NOT NULL,"
    " requested_by text NOT NULL)",
)


class PersonErased(RuntimeError):
    """A key was asked for a subject whose key is destroyed: never silently re-created."""

    def __init__(self) -> None:
        super().__init__("the personal data of a person on this file was erased")


@dataclass(frozen=True)
class SubjectKey:
    subject_id: UUID
    case_id: UUID
    role: str
    key: bytes | None  # None: destroyed


class DataKeys:
    """The SQL of the three tables in one schema; every method runs on the caller's
    cursor or connection. New keys are wrapped with ``kek``; a stored key is unwrapped by
    the KEK named beside it, ``kek`` or one of ``previous`` (while a rotation runs)."""

    def __init__(
        self, schema: str, kek: KeyEncryptionKey, previous: Sequence[KeyEncryptionKey] = ()
    ) -> None:
        self.kek = kek
        self._unwrappers = {k.key_id: k for k in (*previous, kek)}
        s = Identifier(schema)
        self._create = SQL(
            "WITH new AS (INSERT INTO {s}.privacy_subjects (subject_id, case_id, role, person)"
            " SELECT * FROM unnest(%b::uuid[], %b::uuid[], %b::text[], %b::bytea[])"
            " AS w(subject_id, case_id, role, person) WHERE NOT EXISTS"
            " (SELECT FROM {s}.erased_people e WHERE e.person = w.person)"
            " ON CONFLICT (case_id, role) DO NOTHING RETURNING subject_id)"
            " INSERT INTO {s}.data_keys (subject_id, wrapped, kek_id)"
            " SELECT k.subject_id, k.wrapped, %s FROM unnest(%b::uuid[], %b::bytea[])"
            " AS k(subject_id, wrapped) JOIN new USING (subject_id) RETURNING subject_id"
        ).format(s=s)
        self._of_cases = SQL(
            "SELECT s.subject_id, s.case_id, s.role, k.wrapped, k.kek_id"
            " FROM {s}.privacy_subjects s"
            " JOIN {s}.data_keys k USING (subject_id)"
            " WHERE s.case_id = ANY(%b) AND s.role = ANY(%b)"
        ).format(s=s)
        self._by_id = SQL(
            "SELECT s.subject_id, s.case_id, s.role, k.wrapped, k.kek_id"
            " FROM {s}.privacy_subjects s"
            " JOIN {s}.data_keys k USING (subject_id) WHERE s.subject_id = ANY(%b)"
        ).format(s=s)
        self._of_people = SQL(
            "SELECT s.subject_id, s.case_id, s.role FROM {s}.privacy_subjects s"
            " WHERE s.person = ANY(%b)"
        ).format(s=s)
        self._destroyed = SQL(
            "SELECT s.case_id, s.role FROM {s}.privacy_subjects s JOIN {s}.data_keys k"
            " USING (subject_id) WHERE s.case_id = ANY(%b) AND k.wrapped IS NULL"
        ).format(s=s)
        self._destroy = SQL(
            "UPDATE {s}.data_keys SET wrapped = NULL, destroyed_at = now()"
            " WHERE subject_id = ANY(%b) AND wrapped IS NOT NULL"
        ).format(s=s)
        self._tombstone = SQL(
            "INSERT INTO {s}.erased_people (person, reason, requested_by) VALUES (%s, %s, %s)"
            " ON CONFLICT (person) DO NOTHING"
        ).format(s=s)
        self._erased_people = SQL(
            "SELECT person FROM {s}.erased_people WHERE person = ANY(%b)"
        ).format(s=s)
        self._lock_subjects = SQL("LOCK TABLE {s}.privacy_subjects IN SHARE MODE").format(s=s)
        self._lift = SQL("DELETE FROM {s}.erased_people WHERE person = %s").format(s=s)
        self._live_keys = SQL(
            "SELECT subject_id, wrapped, kek_id FROM {s}.data_keys WHERE wrapped IS NOT NULL"
            " AND kek_id <> %s ORDER BY subject_id LIMIT %s"
        ).format(s=s)
        self._rewrap = SQL(
            "UPDATE {s}.data_keys k SET wrapped = n.wrapped, kek_id = %s"
            " FROM unnest(%b::uuid[], %b::bytea[]) AS n(subject_id, wrapped)"
            " WHERE k.subject_id = n.subject_id AND k.wrapped IS NOT NULL"
        ).format(s=s)

    def subjects_for(
        self,
        curs: Cursor[Any],
        wanted: Sequence[tuple[UUID, str, bytes | None]],
    ) -> dict[tuple[UUID, str], SubjectKey]:
        """The subject and key of each (case id, role, person index), made with a fresh
        key when the file has none for that role yet, unless that person is tombstoned
        (then it is missing from the answer). A subject whose key is destroyed comes back
        with key None: the caller must not seal anything for either."""
        if not wanted:
            return {}
        ids = [time_ordered_uuid() for _ in wanted]
        keys = [os.urandom(KEY_BYTES) for _ in wanted]
        wrapped = [self.kek.wrap(key) for key in keys]
        curs.execute(
            self._create,
            (
                ids,
                [w[0] for w in wanted],
                [w[1] for w in wanted],
                [w[2] for w in wanted],
                self.kek.key_id,
                ids,
                wrapped,
            ),
        )
        made = {row[0] for row in _tuples(curs.fetchall())}
        found = {
            (case, role): SubjectKey(subject, case, role, key)
            for (case, role, _), subject, key in zip(wanted, ids, keys, strict=True)
            if subject in made
        }
        rest = [(case, role) for case, role, _ in wanted if (case, role) not in found]
        if rest:  # subjects made before (or by a concurrent writer): read and unwrap them
            stored = self.of_cases(curs, list({c for c, _ in rest}), list({r for _, r in rest}))
            found.update((k, stored[k]) for k in rest if k in stored)
        return found

    def settle(self, curs: Cursor[Any]) -> None:
        """Wait for every transaction making subjects to commit or roll back, and keep new
        ones out until the caller's transaction ends: an erasure, once its tombstone is
        committed, then finds every subject made before it (a writer's insert takes its
        table lock before its snapshot, so one that waited here sees the tombstone)."""
        curs.execute(self._lock_subjects)

    def of_cases(
        self, curs: Cursor[Any], case_ids: Sequence[UUID], roles: Sequence[str]
    ) -> dict[tuple[UUID, str], SubjectKey]:
        curs.execute(self._of_cases, (list(case_ids), list(roles)))
        return {(k.case_id, k.role): k for k in self._keys(curs.fetchall())}

    def by_id(self, curs: Cursor[Any], subject_ids: Iterable[UUID]) -> dict[UUID, SubjectKey]:
        curs.execute(self._by_id, (list(subject_ids),))
        return {k.subject_id: k for k in self._keys(curs.fetchall())}

    def of_people(self, curs: Cursor[Any], people: Sequence[bytes]) -> list[tuple[UUID, UUID, str]]:
        """(subject id, case id, role) of every file these people are on."""
        curs.execute(self._of_people, (list(people),))
        return [(r[0], r[1], r[2]) for r in _tuples(curs.fetchall())]

    def destroyed_roles(self, curs: Cursor[Any], case_ids: Sequence[UUID]) -> dict[UUID, set[str]]:
        """case id -> the roles of it whose keys are destroyed (for those that have any)."""
        curs.execute(self._destroyed, (list(case_ids),))
        found: dict[UUID, set[str]] = {}
        for case, role in _tuples(curs.fetchall()):
            found.setdefault(case, set()).add(role)
        return found

    def destroy(self, curs: Cursor[Any], subject_ids: Sequence[UUID]) -> int:
        """Destroy these subjects' keys (those not destroyed already); how many were."""
        curs.execute(self._destroy, (list(subject_ids),))
        return curs.rowcount

    def tombstone(self, curs: Cursor[Any], person: bytes, reason: str, by: str) -> None:
        curs.execute(self._tombstone, (person, reason, by))

    def erased_people(self, curs: Cursor[Any], people: Sequence[bytes]) -> set[bytes]:
        curs.execute(self._erased_people, (list(people),))
        return {bytes(r[0]) for r in _tuples(curs.fetchall())}

    def lift(self, curs: Cursor[Any], person: bytes) -> bool:
        curs.execute(self._lift, (person,))
        return curs.rowcount > 0

    def rewrap(self, conn: psycopg.Connection[Any], batch: int = 1000) -> int:
        """Rewrap with ``kek`` every live key another KEK wrapped (one of ``previous``),
        in batches that each commit: resumable, and readers go on meanwhile (each key is
        unwrapped by the KEK its row names). KekError for a key no KEK at hand wrapped."""
        done = 0
        while True:
            with conn.transaction(), conn.cursor() as curs:
                curs.execute(self._live_keys, (self.kek.key_id, batch))
                rows = _tuples(curs.fetchall())
                if not rows:
                    return done
                curs.execute(
                    self._rewrap,
                    (
                        self.kek.key_id,
                        [r[0] for r in rows],
                        [self.kek.wrap(self._unwrap(bytes(r[1]), r[2])) for r in rows],
                    ),
                )
                done += len(rows)

    def _keys(self, rows: Sequence[Any]) -> list[SubjectKey]:
        return [
            SubjectKey(r[0], r[1], r[2], None if r[3] is None else self._unwrap(bytes(r[3]), r[4]))
            for r in _tuples(rows)
        ]

    def _unwrap(self, wrapped: bytes, kek_id: str) -> bytes:
        kek = self._unwrappers.get(kek_id)
        if kek is None:
            raise KekError(
                f"a data key is wrapped by the key-encryption key {kek_id}, which this process"
                " does not hold: set CASETRACK_KEK_FILE (or, during a rotation,"
                " CASETRACK_KEK_PREVIOUS_FILE) to it"
            )
        return kek.unwrap(wrapped)


def time_ordered_uuid() -> UUID:
    """A UUIDv7 (RFC 9562): a 48-bit millisecond time, then 74 random bits. Random enough
    to name no one, and it lands at the right edge of the primary key's index instead of
    on a random page: making keys for a batch costs a few appends, not random writes."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits: 12 for rand_a, 62 for rand_b
    value = (millis & (1 << 48) - 1) << 80 | 0x7 << 76 | (rand >> 68) << 64
    return UUID(int=value | 0b10 << 62 | rand & ((1 << 62) - 1))


def _tuples(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows as tuples whatever the cursor's row factory (the recorder's are dicts)."""
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]

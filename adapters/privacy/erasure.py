"""Erasure of personal data by crypto-shredding: `casetrack privacy erase` and `retention`.

One erasure, for the subjects it names (every file of a person, or every person of a file):
0. tombstones a person erased by UCI or email, committed first: from then on no writer
   makes a new key for them, and a key one made just before is found in step 1 (which
   waits for writers still committing theirs: DataKeys.settle);
1. finds their subjects, reads their cases (their plaintext still opens: it tells which
   dead letters mention them); a case that does not read is listed, its keys destroyed
   all the same;
2. in one transaction: destroys the keys, drops the raw input of the dead letters that
   mention them, takes their files off accounts and disables the accounts left with no
   file, and those whose login is a person erased by UCI or email;
3. appends a personal_data.erased event to each of their cases (no personal data in it),
   which every projection applies: case_parties drops their rows.
Run again, it destroys nothing more and appends nothing more (idempotent); run after a
crash between 2 and 3, it appends the events that are missing. The log itself is not
rewritten: every event stays, its sealed values now read as ERASED, its hashes unchanged.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import orjson

from adapters.postgres import accounts_store
from adapters.postgres.event_store import CaseStore
from consumers.ports import ConcurrencyConflict
from domain.accounts import normalize_login
from domain.application_number import case_id
from domain.case import Case, Party, Representative
from domain.personal_data import ERASED, ERASURE_REASONS, SUBJECTS
from projections import case_status_table

SOURCE = "casetrack privacy"
EVENT_TYPE = "personal_data.erased"
_MIN_SCRUBBED = 3  # shorter values (initials) are not searched for in dead letters


@dataclass
class ErasureReport:
    subjects: int = 0
    keys_destroyed: int = 0
    cases: list[str] = field(default_factory=list)  # application numbers
    events_appended: int = 0
    accounts_disabled: int = 0
    dead_letters_dropped: int = 0
    not_encrypted: list[str] = field(default_factory=list)  # files written before encryption
    unreadable: list[str] = field(default_factory=list)  # case ids whose events do not read
    unknown: list[str] = field(default_factory=list)  # application numbers with no file

    def as_dict(self) -> dict[str, object]:
        return dict(vars(self))


def erase(
    store: CaseStore,
    *,
    people: Sequence[str] = (),
    applications: Sequence[str] = (),
    reason: str = "request",
    requested_by: str | None = None,
    now: datetime | None = None,
) -> ErasureReport:
    """Erase every file of ``people`` (UCIs, or representatives' emails) and every person
    on ``applications``; ValueError for an unknown reason code."""
    if reason not in ERASURE_REASONS:
        raise ValueError(f"the reason must be one of: {', '.join(ERASURE_REASONS)}")
    by = requested_by or getpass.getuser()
    moment = now or datetime.now(UTC)
    index = store.vault.blind_index
    persons = [index.person(p) for p in people]
    wanted = [case_id(n) for n in applications]
    if persons:  # first: from now on no writer makes a new key for them
        with store.datastore.transaction(commit=True) as curs:
            for person in persons:
                store.data_keys.tombstone(curs, person, reason, by)
    with store.datastore.transaction(commit=False) as curs:
        store.data_keys.settle(curs)  # a subject being committed as the tombstone landed
        subjects = store.data_keys.of_people(curs, persons)
        subjects += [
            (k.subject_id, k.case_id, k.role)
            for k in store.data_keys.of_cases(curs, wanted, list(SUBJECTS)).values()
        ]
    subjects = sorted(set(subjects))
    report = ErasureReport(subjects=len(subjects))
    case_ids = sorted({s[1] for s in subjects} | set(wanted))
    cases, unreadable = store.load_readable(case_ids)
    report.unreadable = sorted(str(c) for c in unreadable)  # ids, not numbers: unreadable
    report.unknown = sorted(
        n for n in applications if case_id(n) not in cases and case_id(n) not in unreadable
    )
    report.not_encrypted = sorted(
        cases[c].application_number for c in set(wanted) - {s[1] for s in subjects} if c in cases
    )
    roles: dict[UUID, list[str]] = {}
    for _subject, cid, role in subjects:
        roles.setdefault(cid, []).append(role)
    files = [
        (cid, role, cases[cid].application_number)
        for cid, rs in roles.items()
        for role in rs
        if cid in cases
    ]
    # Accounts are disabled by login only when a person is erased: erasing a file (or its
    # retention) takes it off its people's accounts, which stay while they have others.
    logins = [normalize_login(p) for p in people]
    with store.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
        report.keys_destroyed = store.data_keys.destroy(curs, [s[0] for s in subjects])
        report.dead_letters_dropped = store.dead_letters.drop_mentioning(
            curs, [f[2] for f in files], _mentions(cases, roles, people)
        )
        report.accounts_disabled = accounts_store.erase_accounts(
            conn, store.schema, files, logins, moment
        )
    report.cases = sorted({f[2] for f in files})
    report.events_appended = sum(
        _record_erasure(store, cid, rs, reason, by, moment) for cid, rs in sorted(roles.items())
    )
    return report


def expired_files(store: CaseStore, cutoff: date) -> list[str]:
    """Retention: the files closed before ``cutoff`` (by the case_status view) that still
    have a person whose key is not destroyed."""
    with store.datastore.transaction(commit=False) as curs:
        closed = case_status_table.closed_before(curs, store.schema, cutoff)
        live = {
            k.case_id
            for k in store.data_keys.of_cases(
                curs, [case_id(n) for n in closed], list(SUBJECTS)
            ).values()
            if k.key is not None
        }
    return [n for n in closed if case_id(n) in live]


def _record_erasure(
    store: CaseStore, cid: UUID, roles: list[str], reason: str, by: str, now: datetime
) -> int:
    """Append the case's personal_data.erased event (1), or nothing when it has one for
    these roles already (0); re-read and try again when another writer was first."""
    for _attempt in range(10):
        case = store.load_readable([cid])[0].get(cid)
        if case is None:
            return 0
        envelope = {
            "event_id": uuid4(),
            "event_type": EVENT_TYPE,
            "source": SOURCE,
            "occurred_at": now,
        }
        if not case.erase_personal_data(roles, reason, by, envelope):
            return 0
        try:
            store.save([case])
            return 1
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(f"case {cid} kept changing while its erasure was recorded")


def _people_of(case: Case, role: str) -> Party | Representative | None:
    return getattr(case, role, None)


def _logins(cases: dict[UUID, Case], roles: dict[UUID, list[str]]) -> list[str]:
    """The logins the erased people sign in with: their UCI, a representative's email."""
    found: list[str] = []
    for cid, rs in roles.items():
        case = cases.get(cid)
        for role in rs:
            person = _people_of(case, role) if case else None
            if isinstance(person, Party) and person.uci != ERASED:
                found.append(person.uci)
            elif isinstance(person, Representative) and person.email != ERASED:
                found.append(person.email.strip().casefold())
    return found


def _mentions(
    cases: dict[UUID, Case], roles: dict[UUID, list[str]], people: Sequence[str]
) -> list[bytes]:
    """The erased people's values as raw input would hold them: each as UTF-8 and as a
    JSON string body (non-ASCII escaped), long enough not to match everything."""
    values: set[str] = {p.strip() for p in people}
    for cid, rs in roles.items():
        case = cases.get(cid)
        for role in rs:
            person = _people_of(case, role) if case else None
            if isinstance(person, Party):
                values.update(
                    v
                    for v in (person.uci, person.given_name, person.family_name, person.email)
                    if v
                )
                if person.date_of_birth is not None:
                    values.add(person.date_of_birth.isoformat())
            elif isinstance(person, Representative):
                values.update(v for v in (person.name, person.email, person.membership_id) if v)
    values.discard(ERASED)
    found: set[bytes] = set()
    for value in values:
        if len(value) >= _MIN_SCRUBBED:
            found.add(value.encode())
            found.add(orjson.dumps(value)[1:-1])
            found.add(value.encode("ascii", "backslashreplace").replace(b"\\x", b"\\u00"))
    return sorted(found)

"""case_parties keeps blind indexes, never the people's values, and forgets erased people:
live and rebuilt alike, and registering as an erased person is answered like any
registration that matches nothing (the existing accounts flows show that matching on
the indexes still finds everyone it found on the values)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from adapters.postgres.event_store import CaseStore
from adapters.postgres.schema import init_schema
from domain.application_number import case_id
from domain.personal_data import PARTY_FIELDS, REPRESENTATIVE_FIELDS
from projections import rebuild
from projections.case_parties import CasePartiesProjection
from projections.projector import Projector
from projections.registry import select
from projections.status import statuses
from tests.api.conftest import (
    Files,
    Mailbox,
    applicant_registration,
    outbox_done,
    representative_registration,
)
from tests.stores import execute, rows
from tests.vault import TEST_VAULT, open_test_store

INDEX = TEST_VAULT.blind_index


def _values(payload: dict[str, Any]) -> set[str]:
    """Every personal value of a file, and each word of its names: none may be stored.
    (Of four characters or more: shorter ones turn up by chance in 16-byte digests.)"""
    found: set[str] = set()
    parties = [(payload[r], PARTY_FIELDS) for r in ("principal_applicant", "sponsor")]
    if payload.get("representative"):
        parties.append((payload["representative"], REPRESENTATIVE_FIELDS))
    for party, fields in parties:
        for field in fields:
            value = party.get(field)
            if value:
                found.add(str(value))
                found.update(str(value).split())
    found |= {v.replace("-", "") for v in found if v[:4].isdigit() and v.count("-") == 2}
    return {v for v in found if len(v) >= 4}


def _blobs(values: Iterable[object]) -> list[bytes]:
    """The bytes of bytea and bytea[] values."""
    out: list[bytes] = []
    for value in values:
        if isinstance(value, bytes):
            out.append(value)
        elif isinstance(value, list):
            out += _blobs(value)
    return out


def _parties(store: CaseStore, cid: UUID | None = None) -> set[tuple[Any, ...]]:
    """case_parties' rows (of one case), bytea[] as tuples so that rows compare."""
    found = rows(store, "SELECT * FROM {schema}.case_parties")
    return {
        tuple(tuple(v) if isinstance(v, list) else v for v in row.values())
        for row in found
        if cid is None or row["case_id"] == cid
    }


def _erase(store: CaseStore, number: str, roles: Sequence[str], destroy: bool = True) -> None:
    """What `casetrack privacy erase` does to the log: the erasure event, the keys gone
    (unless not ``destroy``: the view must drop the rows on the event alone)."""
    cid = case_id(number)
    case = store.load([cid])[cid]
    envelope = {
        "event_id": uuid4(),
        "event_type": "personal_data.erased",
        "source": "casetrack privacy",
        "occurred_at": datetime.now(UTC),
    }
    assert case.erase_personal_data(list(roles), "request", "tester", envelope)
    store.save([case])
    if not destroy:
        return
    with store.datastore.transaction(commit=True) as curs:
        subjects = store.data_keys.of_cases(curs, [cid], list(roles))
        assert len(subjects) == len(roles)
        store.data_keys.destroy(curs, [s.subject_id for s in subjects.values()])


def _catch_up(store: CaseStore) -> None:
    for projection in select(None):
        Projector(store, projection).catch_up()


def test_case_parties_hold_no_personal_value(store: CaseStore, files: Files) -> None:
    columns = rows(
        store,
        "SELECT column_name, udt_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = 'case_parties'",
        (store.schema,),
    )
    other = {c["column_name"] for c in columns if c["udt_name"] not in ("bytea", "_bytea")}
    assert other == {"case_id", "role", "application_number", "preferred_language"}

    as_text = rows(
        store,
        "SELECT concat_ws(' ', case_id, role, application_number, preferred_language) AS row"
        " FROM {schema}.case_parties",
    )
    stored = " ".join(r["row"] for r in as_text).casefold()
    stored_rows = rows(store, "SELECT * FROM {schema}.case_parties")
    blobs = b"\x00".join(_blobs(v for row in stored_rows for v in row.values()))
    assert len(as_text) >= 2 * len(files.received)
    checked = 0
    for payload in files.received.values():
        for value in _values(payload):
            assert value.casefold() not in stored
            assert value.encode() not in blobs and value.casefold().encode() not in blobs
            checked += 1
    assert checked > 10 * len(files.received)


def test_case_parties_hold_the_indexes_registration_compares(
    store: CaseStore, files: Files
) -> None:
    number, payload = files.pick(representative=True)
    found = {
        r["role"]: r
        for r in rows(
            store,
            "SELECT * FROM {schema}.case_parties WHERE application_number = %s",
            (number,),
        )
    }
    assert set(found) == {"principal_applicant", "sponsor", "representative"}
    sponsor, rep = payload["sponsor"], payload["representative"]
    assert found["sponsor"]["uci_index"] == INDEX.uci(sponsor["uci"])
    assert found["sponsor"]["family_name_indexes"] == [INDEX.family_name(sponsor["family_name"])]
    assert found["representative"]["email_index"] == INDEX.email(rep["email"].upper())
    assert (
        INDEX.family_name(rep["name"].split()[-1]) in found["representative"]["family_name_indexes"]
    )
    membership = rep.get("membership_id")
    expected = INDEX.membership_id(membership) if membership else None
    assert found["representative"]["membership_id_index"] == expected


@pytest.mark.parametrize("keys_destroyed", [True, False], ids=["keys-destroyed", "event-only"])
def test_erased_people_leave_case_parties_live_and_rebuilt(
    store: CaseStore, files: Files, keys_destroyed: bool
) -> None:
    number, _ = files.pick(representative=True)
    cid = case_id(number)
    before = _parties(store)
    _erase(store, number, ["principal_applicant", "representative"], keys_destroyed)
    Projector(store, CasePartiesProjection()).catch_up()

    live = _parties(store)
    assert {row[1] for row in _parties(store, cid)} == {"sponsor"}
    assert live == {row for row in before if row[0] != cid or row[1] == "sponsor"}

    rebuild.rebuild(store, [CasePartiesProjection()], workers=2, opener=open_test_store)
    assert _parties(store) == live
    assert rebuild.verify(store, [CasePartiesProjection()]).ok


def test_a_file_received_after_its_keys_were_destroyed_gets_no_rows(
    store: CaseStore, files: Files
) -> None:
    """A view that reaches application.received only after the erasure (a rebuild, or a
    projector that lagged) reads "[erased]" there: it keeps no row of indexes of that."""
    number, _ = files.pick(representative=False)
    cid = case_id(number)
    with store.datastore.transaction(commit=True) as curs:
        subjects = store.data_keys.of_cases(curs, [cid], ["principal_applicant"])
        store.data_keys.destroy(curs, [s.subject_id for s in subjects.values()])
    rebuild.rebuild(store, [CasePartiesProjection()])  # no erasure event: only the key is gone
    assert {row[1] for row in _parties(store, cid)} == {"sponsor"}


def test_an_erased_person_registers_like_nobody(
    client: TestClient, mailbox: Mailbox, files: Files, store: CaseStore
) -> None:
    number, payload = files.pick(representative=False, applicant_email=True)
    erased = applicant_registration(number, payload, "principal_applicant")
    nobody = {**erased, "family_name": erased["family_name"] + "x"}
    other_number, other = files.pick(representative=True, exclude=(number,))

    expected = client.post("/v1/accounts/register", json=nobody)
    _erase(store, number, ["principal_applicant"])
    # Before the view has seen the erasure its row is still there: the address on file
    # reads as erased, and no code goes out.
    lagging = client.post("/v1/accounts/register", json=erased)
    outbox_done(client)
    _catch_up(store)
    assert not rows(
        store,
        "SELECT 1 FROM {schema}.case_parties WHERE case_id = %s AND role = 'principal_applicant'",
        (case_id(number),),
    )
    gone = client.post("/v1/accounts/register", json=erased)
    outbox_done(client)
    for answer in (lagging, gone):
        assert (answer.status_code, answer.json()) == (expected.status_code, expected.json())
    assert mailbox.folder.messages() == []

    # A registration that matches still gets its code: the silence above is the erasure's.
    control_body = representative_registration(other_number, other)
    control = client.post("/v1/accounts/register", json=control_body)
    assert control.status_code == 202
    (message,) = mailbox.wait(1)
    assert message["To"] == other["representative"]["email"]


def test_db_init_replaces_a_case_parties_table_that_held_the_values(
    database_url: str, store: CaseStore, files: Files
) -> None:
    """The release before kept UCIs, names, emails and birth dates in this table: `db init`
    drops it (its columns changed) and rewinds the view, which refills with indexes."""
    number, payload = files.pick()
    sponsor = payload["sponsor"]
    execute(store, "DROP TABLE {schema}.case_parties")
    execute(
        store,
        "CREATE TABLE {schema}.case_parties (case_id uuid NOT NULL, role text NOT NULL,"
        " application_number text NOT NULL, preferred_language text NOT NULL, uci text,"
        " family_name text, date_of_birth date, email text, name text, membership_id text,"
        " PRIMARY KEY (case_id, role))",
    )
    execute(
        store,
        "INSERT INTO {schema}.case_parties VALUES (%s, 'sponsor', %s, 'en', %s, %s, %s,"
        " NULL, NULL, NULL)",
        (case_id(number), number, sponsor["uci"], sponsor["family_name"], sponsor["date_of_birth"]),
    )

    init_schema(database_url, store.schema)

    assert rows(store, "SELECT * FROM {schema}.case_parties") == []
    assert statuses(store, [CasePartiesProjection()])[0].position == 0
    Projector(store, CasePartiesProjection()).catch_up()
    (row,) = rows(
        store,
        "SELECT * FROM {schema}.case_parties WHERE case_id = %s AND role = 'sponsor'",
        (case_id(number),),
    )
    assert row["uci_index"] == INDEX.uci(sponsor["uci"])
    assert sponsor["uci"].encode() not in b"".join(_blobs(row.values()))
    assert len(_parties(store)) >= 2 * len(files.received)

"""Invariants of erasure over random histories: every stored personal value reads as the
producer sent it, or as [erased] exactly when its subject was erased; the views equal the
fold of those events, live and rebuilt alike; no two subjects share a key."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters.postgres.event_store import CaseStore
from adapters.privacy.erasure import erase
from consumers.contract import ContractError, parse_event
from consumers.file_ingest import ingest_lines
from domain.application_number import case_id
from domain.case import Case
from domain.personal_data import ERASED, personal_paths
from projections import case_status
from projections.projector import Projector
from projections.rebuild import verify
from projections.registry import select
from tests.property.strategies import DB, History, histories, replay
from tests.stores import rows, scratch_store


def project(store: CaseStore) -> None:
    for projection in select(None):
        Projector(store, projection).catch_up()


def sent(lines: list[bytes]) -> dict[str, dict[str, Any]]:
    """event_id -> the fields the producer sent, as the contract gives them to the case."""
    found: dict[str, dict[str, Any]] = {}
    for raw in lines:
        try:
            command = parse_event(raw)
        except ContractError:
            continue
        payload = json.loads(json.dumps(command.payload, default=str))  # dates as text
        found.setdefault(str(command.event_id), payload)
    return found


def erased_roles(events: list[Case.Event]) -> set[str]:
    return {s for e in events if isinstance(e, Case.PersonalDataErased) for s in e.subjects}


@given(history=histories(max_cases=5, max_events=10), data=st.data())
@DB
def test_erasure_leaves_exactly_the_erased_values_erased_and_views_a_fold_of_the_log(
    database_url: str, history: History, data: st.DataObject
) -> None:
    lines = list(history.lines)
    cut = data.draw(st.integers(0, len(lines)), label="erasures after line")
    with scratch_store(database_url) as store:
        ingest_lines(lines[:cut], "before.jsonl", store)
        on_file = replay(lines[:cut]).cases
        numbers = sorted(on_file)
        chosen = (
            data.draw(st.lists(st.sampled_from(numbers), unique=True, max_size=3), label="erased")
            if numbers
            else []
        )
        for number in chosen:
            case = on_file[number]
            if data.draw(st.booleans(), label="by person"):
                assert case.principal_applicant is not None
                erase(store, people=[case.principal_applicant.uci], requested_by="test")
            else:
                erase(store, applications=[number], requested_by="test")
        ingest_lines(lines[cut:], "after.jsonl", store)
        project(store)

        payloads = sent(lines)
        cases = {
            r["originator_id"] for r in rows(store, "SELECT originator_id FROM {schema}.{events}")
        }
        for cid in cases:
            events = store.stored_events(cid)
            gone = erased_roles(events)
            for event in events:
                fields = vars(event)
                topic = f"domain.case:Case.{type(event).__name__}"
                original = payloads.get(str(event.event_id), {})
                for owner, holder, name in personal_paths(fields, topic):
                    value = (fields[holder] if holder else fields)[name]
                    if owner in gone:
                        assert value == ERASED
                    else:
                        given_value = (original[holder] if holder else original)[name]
                        assert value == given_value
            view = rows(store, "SELECT view FROM {schema}.case_status WHERE case_id = %s", [cid])
            assert [r["view"] for r in view] == [case_status.fold(events)]
        for number in chosen:
            assert "principal_applicant" in erased_roles(store.stored_events(case_id(number)))

        keys = rows(store, "SELECT wrapped FROM {schema}.data_keys WHERE wrapped IS NOT NULL")
        assert len({bytes(k["wrapped"]) for k in keys}) == len(keys), "a key shared by two"
        destroyed = rows(
            store,
            "SELECT s.case_id, s.role FROM {schema}.privacy_subjects s"
            " JOIN {schema}.data_keys k USING (subject_id) WHERE k.wrapped IS NULL",
        )
        for row in destroyed:
            assert row["role"] in erased_roles(store.stored_events(row["case_id"]))
        report = verify(store, select(None))
        assert not any(report.differences.values()), report.differences

"""The notification outbox over random histories on PostgreSQL: for every event and role,
exactly the change that role sees (projections.notify_changes over the stored log) for
each account linked in that role, nothing for the rest; projected in random page sizes,
and a rebuild of every view leaves the outbox as it was."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters.postgres.event_store import CaseStore
from consumers.file_ingest import ingest_lines
from domain.application_number import case_id
from projections import case_status
from projections.event_log import EventLog, Positioned
from projections.notify_changes import visible_change
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.registry import select
from projections.roles import ROLES
from tests.notify_fixtures import link, outbox
from tests.property.strategies import DB, History, histories
from tests.stores import scratch_store


def expected(store: CaseStore) -> dict[tuple[Any, int, str], dict[str, Any]]:
    """(case, version, role) -> the change, from the stored log."""
    with store.datastore.transaction(commit=False) as curs:
        head = EventLog(store).head(curs)
    found = {}
    for stored in EventLog(store).cases(head):
        view = None
        for item in stored:
            assert isinstance(item, Positioned)
            after = case_status.evolve(view, item.event)
            for role in ROLES:
                change = visible_change(view, after, item.event, role)
                if change is not None:
                    found[(item.case_id, item.event.originator_version, role)] = change
            view = after
    return found


@DB
@given(history=histories(max_cases=4, max_events=12), page_size=st.integers(1, 30))
def test_every_row_is_what_its_recipients_role_sees(
    database_url: str, history: History, page_size: int
) -> None:
    with scratch_store(database_url) as store:
        accounts: dict[int, tuple[Any, str]] = {}  # account -> (case, role)
        for number in history.application_numbers:
            for role in ROLES:
                accounts[link(store, number, role)] = (case_id(number), role)
        ingest_lines(list(history.lines), "test", store)
        for projection in select(None):
            Projector(store, projection, page_size=page_size).catch_up()
        rows = outbox(store, "email")
        want = expected(store)
        got = {(r["case_id"], r["version"], r["recipient"]): r for r in rows}
        assert len(got) == len(rows)  # one row per change and recipient
        # one account per file and role: a row for each change of each role
        assert {(r["case_id"], r["version"], r["role"]) for r in rows} == set(want)
        for row in rows:
            assert (row["case_id"], row["role"]) == accounts[row["recipient"]]
            assert row["change"] == want[(row["case_id"], row["version"], row["role"])]
        before = outbox(store)
        rebuild(store, select(None))
        assert outbox(store) == before

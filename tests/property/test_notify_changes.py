"""What a notification tells each role, over random case histories: only what that role
sees in the tracker (projections.case_status.for_role, projections.timeline.sees), and
something whenever that changed."""

from __future__ import annotations

import json
from contextlib import suppress

from hypothesis import assume, given
from hypothesis import strategies as st

from consumers.contract import parse_event
from domain.case import Case, handle
from domain.rules import RuleViolation
from projections import case_status, timeline
from projections.notify_changes import visible_change
from projections.roles import ROLES
from tests.property.strategies import application_numbers, case_lines

# What a sponsor never sees, as keys of the status or words of the history.
_SPONSOR_HIDDEN_KEYS = {"activities", "next_steps", "documents", "acknowledged_on"}


@st.composite
def case_events(draw: st.DrawFn) -> list[Case.Event]:
    """One case's stored events: its generated lines the rules accepted, in order."""
    case: Case | None = None
    for raw in draw(case_lines(draw(application_numbers))):
        with suppress(RuleViolation):
            case, _ = handle(case, parse_event(raw))
    assume(case is not None)
    assert case is not None
    return list(case.collect_events())


@given(case_events())
def test_each_change_holds_only_what_its_role_sees(events: list[Case.Event]) -> None:
    before: case_status.View | None = None
    for event in events:
        after = case_status.evolve(before, event)
        for role in ROLES:
            change = visible_change(before, after, event, role)
            if before is None:
                assert change is None
                continue
            seen_before, seen_after = (case_status.for_role(v, role) for v in (before, after))
            moved = {
                k for k, v in seen_after.items() if k != "last_updated" and seen_before.get(k) != v
            }
            shown = timeline.is_shown(event, role)
            assert (change is not None) == bool(moved or shown)
            if change is None:
                continue
            assert change["status"] == seen_after  # the role's view, nothing more
            assert set(change["fields"]) == moved
            assert (change["history"] is not None) == shown
            if role == "sponsor":
                assert not _SPONSOR_HIDDEN_KEYS & set(change["status"])
                assert set(change["status"]) <= set(case_status.SPONSOR_FIELDS)
                assert event.event_type in timeline.SPONSOR_SHOWN or change["history"] is None
                json.dumps(change)  # plain JSON: stored and sent as it is
        before = after

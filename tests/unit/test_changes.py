"""projections.changes: what each event changed in the state an auditor reads."""

from __future__ import annotations

import pytest

from projections import case_status
from projections.changes import (
    Change,
    Json,
    PathError,
    apply,
    diff,
    event_changes,
    keys_of,
    path,
)
from tests.unit.builders import DUE_ON, events_of


def test_nested_dicts_are_compared_key_by_key() -> None:
    before = {"a": {"b": 1, "c": {"d": "x", "e": "y"}}, "f": 2}
    after = {"a": {"b": 1, "c": {"d": "x", "e": "z"}}, "f": 3}
    assert diff(before, after) == [Change("a.c.e", "y", "z"), Change("f", 2, 3)]


def test_lists_are_compared_whole() -> None:
    """Dropping the first element shifts the others: reported as one change of the list."""
    before = {"steps": [{"kind": "a"}, {"kind": "b"}, {"kind": "c"}]}
    after = {"steps": [{"kind": "b"}, {"kind": "c"}]}
    assert diff(before, after) == [Change("steps", before["steps"], after["steps"])]
    assert diff({"steps": [1, 2]}, {"steps": [1, 2]}) == []


def test_added_and_removed_keys_read_as_null_on_the_other_side() -> None:
    assert diff({"a": 1, "b": 2}, {"b": 2, "c": 3}) == [Change("a", 1, None), Change("c", None, 3)]


def test_an_absent_key_and_a_null_are_no_change() -> None:
    assert diff({"a": None}, {}) == []
    assert diff({}, {"a": None}) == []
    assert diff({"a": None}, {"a": 0}) == [Change("a", None, 0)]
    assert diff({"a": {"b": 1}}, {"a": None}) == [Change("a", {"b": 1}, None)]
    assert diff({}, {"a": {"b": 1}}) == [Change("a", None, {"b": 1})]


def test_values_are_compared_as_json_not_as_python() -> None:
    assert diff({"a": 1}, {"a": True}) == [Change("a", 1, True)]
    assert diff({"a": 1}, {"a": 1.0}) == [Change("a", 1, 1.0)]
    assert diff({"a": [0]}, {"a": [False]}) == [Change("a", [0], [False])]


def test_a_value_that_is_not_an_object_is_changed_whole_at_the_empty_path() -> None:
    assert diff(1, 2) == [Change("", 1, 2)]
    assert diff(None, {"a": 1}) == [Change("", None, {"a": 1})]
    assert diff("same", "same") == []


def test_keys_that_are_not_identifiers_are_quoted() -> None:
    keys = ("documents", "a.b", 'say "hi"', "x", "2nd")
    written = path(keys)
    assert written == 'documents["a.b"]["say \\"hi\\""].x["2nd"]'
    assert keys_of(written) == keys
    assert diff({"a.b": {"c": 1}}, {"a.b": {"c": 2}}) == [Change('["a.b"].c', 1, 2)]


@pytest.mark.parametrize("bad", [".a", "a..b", 'a["x"]b', "a[1]", "[x]", "a.", "a b"])
def test_malformed_paths_are_refused(bad: str) -> None:
    with pytest.raises(PathError, match="malformed path"):
        keys_of(bad)


def test_apply_makes_the_changes_without_touching_the_state() -> None:
    before = {"a": {"b": 1}, "l": [1]}
    after = apply(before, [Change("a.b", 1, 2), Change("l", [1], []), Change("n", None, "x")])
    assert after == {"a": {"b": 2}, "l": [], "n": "x"}
    assert before == {"a": {"b": 1}, "l": [1]}
    assert apply(before, [Change("", before, 7)]) == 7


def test_apply_refuses_a_path_through_something_else_than_an_object() -> None:
    with pytest.raises(PathError, match="l is not an object"):
        apply({"l": [1]}, [Change("l.x", None, 1)])
    with pytest.raises(PathError, match="not an object"):
        apply([1], [Change("x", None, 1)])


def test_each_event_of_a_case_with_what_it_changed() -> None:
    events = events_of(
        "application.acknowledged",
        "eligibility.started",
        "eligibility.met",
        "medical.requested",
        "documents.requested",
        "documents.received",
    )
    found = event_changes(events)
    assert len(found) == len(events)
    stamps = [e.timestamp.isoformat() for e in events]
    step = {"kind": "medical", "due_on": DUE_ON.isoformat()}
    document = {"kind": "documents", "due_on": DUE_ON.isoformat(), "document": "police_certificate"}
    received, acknowledged, started, met, medical, requested, documents_in = found
    assert {c.path: c.after for c in received} == {
        "application_number": "F000123456",
        "category": "spouse",
        "preferred_language": "en",
        "status": "received",
        "received_on": "2024-01-15",
        "activities": {
            "sponsor_eligibility": "not_started",
            "eligibility": "not_started",
            "biometrics": "not_started",
            "medical": "not_started",
            "background_check": "not_started",
        },
        "next_steps": [],
        "documents": {"copr": "not_issued", "copr_issued_on": None},
        "last_updated": stamps[0],
        "sponsor_last_updated": stamps[0],
    }
    assert all(c.before is None for c in received)
    assert acknowledged == [
        Change("status", "received", "in_progress"),
        Change("acknowledged_on", None, "2024-02-20"),
        Change("last_updated", stamps[0], stamps[1]),
        Change("sponsor_last_updated", stamps[0], stamps[1]),
    ]
    assert started == [
        Change("activities.eligibility", "not_started", "in_progress"),
        Change("last_updated", stamps[1], stamps[2]),
    ]
    assert met[0] == Change("activities.eligibility", "in_progress", "completed")
    assert medical[:2] == [
        Change("activities.medical", "not_started", "action_required"),
        Change("next_steps", [], [step]),
    ]
    assert requested[0] == Change("next_steps", [step], [step, document])
    assert documents_in[0] == Change("next_steps", [step, document], [step])


def test_changes_leave_out_bookkeeping_and_the_figures_of_a_day() -> None:
    """The version moves with every event and days_elapsed with the calendar: neither is
    something an event changed in the state."""
    events = events_of("application.acknowledged", "application.withdrawn")
    paths = {c.path for changes in event_changes(events) for c in changes}
    assert "decided_on" in paths and "outcome" in paths
    assert not paths & {"version", "days_elapsed", "service_standard_days"}


def test_the_changes_of_all_events_build_the_whole_state() -> None:
    events = events_of("application.acknowledged", "biometrics.requested", "application.withdrawn")
    state: Json = {}
    for changes in event_changes(events):
        state = apply(state, changes)
    view = case_status.fold(events)
    assert view is not None
    assert state == {k: v for k, v in case_status.whole(view).items() if v is not None}

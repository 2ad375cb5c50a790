"""projections.tracker_view and projections.as_of: what the CLI and the API both show."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from projections import case_status, timeline, tracker_view
from projections.as_of import events_as_of, state_as_of
from tests.unit.builders import events_of, view_of

TODAY = date(2024, 6, 1)


def test_an_estimate_only_for_open_files_to_roles_that_see_the_activities() -> None:
    acknowledged = view_of("application.acknowledged")
    wanted = tracker_view.estimate_of(acknowledged, "principal_applicant")
    assert wanted == tracker_view.EstimateOf("spouse", date(2024, 1, 15))
    assert tracker_view.estimate_of(acknowledged, "representative") == wanted
    assert tracker_view.estimate_of(acknowledged, "sponsor") is None
    assert tracker_view.estimate_of(view_of(), "principal_applicant") is None
    closed = view_of("application.acknowledged", "application.withdrawn")
    assert tracker_view.estimate_of(closed, "principal_applicant") is None
    for role in case_status.ROLES:  # the same rule as "activities" in the role's view
        for view in (acknowledged, view_of(), closed):
            shown = case_status.presented(view, TODAY, role)
            expected = view["status"] != "closed" and "activities" in shown
            assert (tracker_view.estimate_of(view, role) is not None) == expected
    with pytest.raises(ValueError, match="role must be one of"):
        tracker_view.estimate_of(acknowledged, "auditor")


def test_the_view_the_role_sees_then_the_estimate_what_is_beside_and_the_history() -> None:
    view = view_of("application.acknowledged")
    estimate = {"text": "about a year"}
    shown = tracker_view.tracker_view(
        view, TODAY, "principal_applicant", estimate, ["line"], role="principal_applicant"
    )
    presented = case_status.presented(view, TODAY, "principal_applicant")
    assert list(shown) == [*presented, "estimate", "role", "history"]
    assert shown == {
        **presented,
        "estimate": estimate,
        "role": "principal_applicant",
        "history": ["line"],
    }
    sponsor = tracker_view.tracker_view(view, TODAY, "sponsor", None, [])
    assert list(sponsor) == [*case_status.presented(view, TODAY, "sponsor"), "history"]


def test_the_history_is_filtered_for_the_role_and_served_in_its_language() -> None:
    events = events_of("application.acknowledged", "biometrics.requested")
    lines = [line for line in map(timeline.entry, events) if line is not None]
    applicant = tracker_view.served_history(lines, "principal_applicant", "fr")
    assert applicant == [timeline.served(line, "fr") for line in lines]
    sponsor = tracker_view.served_history(lines, "sponsor", "en")
    assert [line["title"] for line in sponsor] == [
        timeline.TEXTS[e.event_type].title_en for e in events[:2]
    ]


def test_the_state_as_of_a_version_or_an_instant() -> None:
    events = events_of("application.acknowledged", "application.withdrawn")
    assert events_as_of(events) == events
    assert events_as_of(events, version=2) == events[:2]
    received = case_status.fold(events[:1])
    assert received is not None
    first = state_as_of(events, version=1)
    assert first == case_status.presented(received, events[0].timestamp.date())
    assert first is not None and first["status"] == "received"
    assert state_as_of(events, instant=events[1].timestamp) == state_as_of(events, version=2)
    assert state_as_of(events, instant=events[0].timestamp - timedelta(seconds=1)) is None
    last = state_as_of(events)
    assert last is not None and last["status"] == "closed"
    with pytest.raises(ValueError, match="not both"):
        events_as_of(events, version=1, instant=events[0].timestamp)

"""The case_status view: what each role sees, and when last_updated moves."""

from __future__ import annotations

from datetime import date

import pytest

from projections import case_status
from tests.unit.builders import events_of, view_of


def test_before_the_acknowledgement_nobody_sees_more_than_the_date_received() -> None:
    view = view_of("biometrics.requested")
    for role in case_status.ROLES:
        shown = case_status.for_role(view, role)
        assert set(shown) == set(case_status.BEFORE_AOR_FIELDS)
        assert shown["status"] == "received"


def test_the_sponsor_sees_overall_status_only() -> None:
    view = view_of("application.acknowledged", "biometrics.requested")
    shown = case_status.for_role(view, "sponsor")
    assert set(shown) == set(case_status.SPONSOR_FIELDS)
    assert "activities" not in shown and "next_steps" not in shown


@pytest.mark.parametrize("role", ["principal_applicant", "representative"])
def test_applicant_and_representative_see_everything(role: str) -> None:
    view = view_of("application.acknowledged", "biometrics.requested")
    shown = case_status.for_role(view, role)
    assert shown["activities"]["biometrics"] == "action_required"
    assert shown["next_steps"][0]["kind"] == "biometrics"
    assert "version" not in shown


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        case_status.for_role(view_of(), "auditor")


def test_copr_appears_in_documents_and_closes_the_passport_step() -> None:
    from tests.unit.builders import ready_for_approval_steps

    steps = (*ready_for_approval_steps(), "decision.made", "passport.requested")
    before = view_of(*steps)
    assert before["documents"] == {"copr": "not_issued", "copr_issued_on": None}
    assert [s["kind"] for s in before["next_steps"]] == ["passport"]
    after = view_of(*steps, "copr.issued")
    assert after["documents"]["copr"] == "issued" and after["documents"]["copr_issued_on"]
    assert after["next_steps"] == []


def test_last_updated_moves_only_on_visible_changes() -> None:
    events = events_of("application.acknowledged", "eligibility.started")
    view = case_status.fold(events[:2])
    assert view is not None
    after_internal = case_status.evolve(view, events[2])
    # eligibility.started changes an activity status: visible.
    assert after_internal["activities"]["eligibility"] == "in_progress"
    assert after_internal["last_updated"] == events[2].timestamp.isoformat()


def test_days_elapsed_stops_at_the_decision() -> None:
    view = {"received_on": "2024-01-01", "decided_on": "2024-03-01"}
    assert case_status.days_elapsed(view, date(2030, 1, 1)) == 60
    assert case_status.days_elapsed({**view, "decided_on": None}, date(2024, 1, 11)) == 10


def test_a_second_passport_request_replaces_the_first() -> None:
    from tests.unit.builders import ready_for_approval_steps

    view = view_of(
        *ready_for_approval_steps(), "decision.made", "passport.requested", "passport.requested"
    )
    assert [s["kind"] for s in view["next_steps"]] == ["passport"]


def test_the_sponsor_last_update_moves_only_with_what_the_sponsor_sees() -> None:
    events = events_of(
        "application.acknowledged",
        "biometrics.requested",
        "correspondence.sent",
        "application.withdrawn",
    )
    acknowledged, later, withdrawn = (case_status.fold(events[:n]) for n in (2, 4, 5))
    assert acknowledged and later and withdrawn
    sponsor = case_status.for_role(later, "sponsor")
    assert sponsor["last_updated"] == events[1].timestamp.isoformat()
    assert sponsor["last_updated"] == case_status.for_role(acknowledged, "sponsor")["last_updated"]
    applicant = case_status.for_role(later, "principal_applicant")
    assert applicant["last_updated"] == events[3].timestamp.isoformat() != sponsor["last_updated"]
    assert "sponsor_last_updated" not in applicant
    assert case_status.for_role(withdrawn, "sponsor")["last_updated"] == withdrawn["last_updated"]

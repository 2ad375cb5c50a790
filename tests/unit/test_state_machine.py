"""One test per row of the transition table (domain.rules.TRANSITIONS).

docs/state-machine.md is the same table in prose. Each event type has at least
one row where it is accepted (asserting exactly what it changed) and one where
it is rejected (asserting the rule's name and that the case did not change).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from builders import (
    ACKNOWLEDGED_ON,
    ACTIVITY_DONE,
    APPLICATION_NUMBER,
    DOCUMENT,
    DUE_ON,
    INTERVIEW_AT,
    OCCURRED_AT,
    RECEIVED_ON,
    apply,
    approved,
    cmd,
    given,
    observable,
    person,
    ready_for_approval,
    ready_for_approval_steps,
    redelivered,
    snapshot,
)

from domain import catalogue as t
from domain import rules
from domain.activities import Activity, ActivityStatus, Change
from domain.application_number import case_id
from domain.case import Case, Party, Representative, handle
from domain.commands import Outcome
from domain.rules import RuleViolation

S = ActivityStatus
C = Change
NON_RECEIVED_TYPES = [event_type for event_type in t.EVENT_TYPES if event_type != t.RECEIVED]
APPROVED = (*ready_for_approval_steps(), t.DECISION_MADE)
REFUSED = cmd(t.DECISION_MADE, outcome="refused")
LATER = DUE_ON.replace(month=DUE_ON.month + 1)
DOCS_ROOT = Path(__file__).resolve().parents[2] / "docs" / "state-machine.md"


def row(event_type: str, steps: tuple, command, expected, variant: str = ""):
    """One table row: the case after ``steps`` meets ``command``; ``expected`` is
    the dict of changes (accepted) or the rule name (rejected)."""
    return pytest.param(
        steps, command, expected, id=f"{event_type}-{variant}" if variant else event_type
    )


# ---------------------------------------------------------------- accepted rows
# (given steps after application.received) -> event -> exactly what changes

ACCEPTED = [
    row(t.ACKNOWLEDGED, (), cmd(t.ACKNOWLEDGED), {"acknowledged_on": ACKNOWLEDGED_ON}),
    # activities may start before the acknowledgement of receipt: no row needs it
    row("sponsor_eligibility.started", (), cmd("sponsor_eligibility.started"),
        {"sponsor_eligibility": (S.IN_PROGRESS, None, None)}),
    row("sponsor_eligibility.met", ("sponsor_eligibility.started",),
        cmd("sponsor_eligibility.met"), {"sponsor_eligibility": (S.COMPLETED, C.MET, None)}),
    row("sponsor_eligibility.not_met", ("sponsor_eligibility.started",),
        cmd("sponsor_eligibility.not_met"),
        {"sponsor_eligibility": (S.COMPLETED, C.NOT_MET, None)}),
    row("eligibility.started", (), cmd("eligibility.started"),
        {"eligibility": (S.IN_PROGRESS, None, None)}),
    row("eligibility.met", ("eligibility.started",), cmd("eligibility.met"),
        {"eligibility": (S.COMPLETED, C.MET, None)}),
    row("eligibility.not_met", ("eligibility.started",), cmd("eligibility.not_met"),
        {"eligibility": (S.COMPLETED, C.NOT_MET, None)}),
    row("biometrics.requested", (), cmd("biometrics.requested"),
        {"biometrics": (S.ACTION_REQUIRED, None, DUE_ON)}),
    row("biometrics.requested", ("biometrics.requested",),
        cmd("biometrics.requested", due_on=LATER),
        {"biometrics": (S.ACTION_REQUIRED, None, LATER)}, "again-new-due-date"),
    row("biometrics.completed", ("biometrics.requested",), cmd("biometrics.completed"),
        {"biometrics": (S.COMPLETED, C.COMPLETED, None)}),
    row("biometrics.exempted", (), cmd("biometrics.exempted"),
        {"biometrics": (S.NOT_REQUIRED, C.EXEMPTED, None)}),
    row("biometrics.exempted", ("biometrics.requested",), cmd("biometrics.exempted"),
        {"biometrics": (S.NOT_REQUIRED, C.EXEMPTED, None)}, "after-request"),
    row("medical.requested", (), cmd("medical.requested"),
        {"medical": (S.ACTION_REQUIRED, None, DUE_ON)}),
    row("medical.passed", ("medical.requested",), cmd("medical.passed"),
        {"medical": (S.COMPLETED, C.PASSED, None)}),
    row("medical.failed", ("medical.requested",), cmd("medical.failed"),
        {"medical": (S.COMPLETED, C.FAILED, None)}),
    row("medical.exempted", (), cmd("medical.exempted"),
        {"medical": (S.NOT_REQUIRED, C.EXEMPTED, None)}),
    row("medical.exempted", ("medical.requested",), cmd("medical.exempted"),
        {"medical": (S.NOT_REQUIRED, C.EXEMPTED, None)}, "after-request"),
    row("background_check.started", (), cmd("background_check.started"),
        {"background_check": (S.IN_PROGRESS, None, None)}),
    row("background_check.completed", ("background_check.started",),
        cmd("background_check.completed"),
        {"background_check": (S.COMPLETED, C.COMPLETED, None)}),
    row(t.DOCUMENTS_REQUESTED, (), cmd(t.DOCUMENTS_REQUESTED),
        {"documents_requested": {DOCUMENT: DUE_ON}}),
    row(t.DOCUMENTS_REQUESTED, (t.DOCUMENTS_REQUESTED,),
        cmd(t.DOCUMENTS_REQUESTED, documents=[DOCUMENT, "passport_copy"], due_on=LATER),
        {"documents_requested": {DOCUMENT: LATER, "passport_copy": LATER}}, "again"),
    row(t.DOCUMENTS_RECEIVED, (t.DOCUMENTS_REQUESTED,), cmd(t.DOCUMENTS_RECEIVED),
        {"documents_requested": {}}),
    row(t.DOCUMENTS_RECEIVED,
        (cmd(t.DOCUMENTS_REQUESTED, documents=[DOCUMENT, "passport_copy"]),),
        cmd(t.DOCUMENTS_RECEIVED, documents=["passport_copy"]),
        {"documents_requested": {DOCUMENT: DUE_ON}}, "part-of-request"),
    row(t.INTERVIEW_SCHEDULED, (), cmd(t.INTERVIEW_SCHEDULED),
        {"interview": "scheduled", "interview_at": INTERVIEW_AT}),
    row(t.INTERVIEW_SCHEDULED, (t.INTERVIEW_SCHEDULED, t.INTERVIEW_COMPLETED),
        cmd(t.INTERVIEW_SCHEDULED, scheduled_for=INTERVIEW_AT.replace(day=20)),
        {"interview": "scheduled", "interview_at": INTERVIEW_AT.replace(day=20)},
        "second-interview"),
    row(t.INTERVIEW_COMPLETED, (t.INTERVIEW_SCHEDULED,), cmd(t.INTERVIEW_COMPLETED),
        {"interview": "completed"}),
    row(t.DECISION_MADE, ready_for_approval_steps(), cmd(t.DECISION_MADE),
        {"outcome": "approved"}),
    row(t.DECISION_MADE, (*ready_for_approval_steps(), t.INTERVIEW_SCHEDULED,
                          t.INTERVIEW_COMPLETED),
        cmd(t.DECISION_MADE), {"outcome": "approved"}, "after-interview"),
    row(t.DECISION_MADE,
        (t.ACKNOWLEDGED, *ACTIVITY_DONE[Activity.SPONSOR_ELIGIBILITY],
         *ACTIVITY_DONE[Activity.ELIGIBILITY], *ACTIVITY_DONE[Activity.BACKGROUND_CHECK],
         "medical.exempted", "biometrics.exempted"),
        cmd(t.DECISION_MADE), {"outcome": "approved"}, "with-exemptions"),
    # a refusal needs no prerequisite: no AOR, nothing assessed, interview pending
    row(t.DECISION_MADE, (t.INTERVIEW_SCHEDULED,), REFUSED, {"outcome": "refused"}, "refused"),
    row(t.WITHDRAWN, (), cmd(t.WITHDRAWN), {"outcome": "withdrawn"}),
    row(t.COPR_ISSUED, APPROVED, cmd(t.COPR_ISSUED), {"copr_issued_on": OCCURRED_AT.date()}),
    row(t.COPR_ISSUED, (*APPROVED, t.PASSPORT_REQUESTED),
        cmd(t.COPR_ISSUED, issued_on=LATER), {"copr_issued_on": LATER}, "dated-after-passport"),
    row(t.PASSPORT_REQUESTED, APPROVED, cmd(t.PASSPORT_REQUESTED),
        {"passport_requested_on": OCCURRED_AT.date()}),
    row(t.PASSPORT_REQUESTED, (*APPROVED, t.PASSPORT_REQUESTED), cmd(t.PASSPORT_REQUESTED),
        {"passport_requested_on": OCCURRED_AT.date()}, "again"),
    # history only: the case state does not change, the event is still recorded
    row(t.CORRESPONDENCE_SENT, (), cmd(t.CORRESPONDENCE_SENT), {}),
]

# ---------------------------------------------------------------- rejected rows
# (given steps after application.received) -> event -> the rule it breaks

REJECTED = [
    row(t.ACKNOWLEDGED, (t.ACKNOWLEDGED,), cmd(t.ACKNOWLEDGED), "already_acknowledged"),
    row("sponsor_eligibility.started", ("sponsor_eligibility.started",),
        cmd("sponsor_eligibility.started"), "activity_already_started"),
    row("sponsor_eligibility.met", (), cmd("sponsor_eligibility.met"), "activity_not_started"),
    row("sponsor_eligibility.not_met", ACTIVITY_DONE[Activity.SPONSOR_ELIGIBILITY],
        cmd("sponsor_eligibility.not_met"), "activity_not_started"),
    row("eligibility.started", ACTIVITY_DONE[Activity.ELIGIBILITY], cmd("eligibility.started"),
        "activity_already_started"),
    row("eligibility.met", (), cmd("eligibility.met"), "activity_not_started"),
    row("eligibility.met", ACTIVITY_DONE[Activity.ELIGIBILITY], cmd("eligibility.met"),
        "activity_not_started", "twice"),
    row("eligibility.not_met", (), cmd("eligibility.not_met"), "activity_not_started"),
    row("biometrics.requested", ACTIVITY_DONE[Activity.BIOMETRICS], cmd("biometrics.requested"),
        "activity_already_finished"),
    row("biometrics.requested", ("biometrics.exempted",), cmd("biometrics.requested"),
        "activity_already_finished", "after-exemption"),
    row("biometrics.completed", (), cmd("biometrics.completed"), "activity_not_requested"),
    row("biometrics.completed", ACTIVITY_DONE[Activity.BIOMETRICS], cmd("biometrics.completed"),
        "activity_not_requested", "twice"),
    row("biometrics.exempted", ACTIVITY_DONE[Activity.BIOMETRICS], cmd("biometrics.exempted"),
        "activity_already_finished"),
    row("medical.requested", ("medical.exempted",), cmd("medical.requested"),
        "activity_already_finished"),
    row("medical.passed", (), cmd("medical.passed"), "activity_not_requested"),
    row("medical.passed", ("medical.exempted",), cmd("medical.passed"),
        "activity_not_requested", "after-exemption"),
    row("medical.failed", ("medical.requested", "medical.passed"), cmd("medical.failed"),
        "activity_not_requested"),
    row("medical.exempted", ("medical.requested", "medical.failed"), cmd("medical.exempted"),
        "activity_already_finished"),
    row("background_check.started", ("background_check.started",),
        cmd("background_check.started"), "activity_already_started"),
    row("background_check.completed", (), cmd("background_check.completed"),
        "activity_not_started"),
    row(t.DOCUMENTS_REQUESTED, (t.WITHDRAWN,), cmd(t.DOCUMENTS_REQUESTED), "case_closed"),
    row(t.DOCUMENTS_RECEIVED, (), cmd(t.DOCUMENTS_RECEIVED), "documents_not_requested"),
    row(t.DOCUMENTS_RECEIVED, (t.DOCUMENTS_REQUESTED, t.DOCUMENTS_RECEIVED),
        cmd(t.DOCUMENTS_RECEIVED), "documents_not_requested", "twice"),
    row(t.DOCUMENTS_RECEIVED, (t.DOCUMENTS_REQUESTED,),
        cmd(t.DOCUMENTS_RECEIVED, documents=[DOCUMENT, "bank_statement"]),
        "documents_not_requested", "one-not-requested"),
    row(t.INTERVIEW_SCHEDULED, (REFUSED,), cmd(t.INTERVIEW_SCHEDULED), "case_closed"),
    row(t.INTERVIEW_COMPLETED, (), cmd(t.INTERVIEW_COMPLETED), "interview_not_scheduled"),
    row(t.INTERVIEW_COMPLETED, (t.INTERVIEW_SCHEDULED, t.INTERVIEW_COMPLETED),
        cmd(t.INTERVIEW_COMPLETED), "interview_not_scheduled", "twice"),
    row(t.DECISION_MADE, ready_for_approval_steps()[1:], cmd(t.DECISION_MADE),
        "not_acknowledged"),
    row(t.DECISION_MADE, (t.ACKNOWLEDGED,), cmd(t.DECISION_MADE), "approval_prerequisites",
        "nothing-assessed"),
    row(t.DECISION_MADE, (*ready_for_approval_steps(), t.INTERVIEW_SCHEDULED),
        cmd(t.DECISION_MADE), "interview_pending", "interview-pending"),
    row(t.DECISION_MADE, APPROVED, cmd(t.DECISION_MADE), "case_closed", "twice"),
    row(t.DECISION_MADE, (t.WITHDRAWN,), REFUSED, "case_closed", "refused-after-withdrawal"),
    row(t.WITHDRAWN, (REFUSED,), cmd(t.WITHDRAWN), "case_closed"),
    row(t.WITHDRAWN, APPROVED, cmd(t.WITHDRAWN), "case_closed", "after-approval"),
    row(t.COPR_ISSUED, (), cmd(t.COPR_ISSUED), "requires_approval"),
    row(t.COPR_ISSUED, (REFUSED,), cmd(t.COPR_ISSUED), "requires_approval", "after-refusal"),
    row(t.COPR_ISSUED, (t.WITHDRAWN,), cmd(t.COPR_ISSUED), "requires_approval",
        "after-withdrawal"),
    row(t.COPR_ISSUED, (*APPROVED, t.COPR_ISSUED), cmd(t.COPR_ISSUED), "copr_already_issued",
        "twice"),
    row(t.PASSPORT_REQUESTED, (*APPROVED, t.COPR_ISSUED), cmd(t.PASSPORT_REQUESTED),
        "copr_already_issued"),
    row(t.PASSPORT_REQUESTED, ready_for_approval_steps(), cmd(t.PASSPORT_REQUESTED),
        "requires_approval", "before-decision"),
    row(t.CORRESPONDENCE_SENT, (t.WITHDRAWN,), cmd(t.CORRESPONDENCE_SENT), "case_closed"),
]


def _row_types(rows: list) -> set[str]:
    return {param.id.split("-")[0] for param in rows}


# ---------------------------------------------------------------- the table itself


def test_every_event_type_but_received_has_a_row_in_the_transition_table() -> None:
    assert set(rules.TRANSITIONS) == set(NON_RECEIVED_TYPES)


def test_every_event_type_has_an_accepted_and_a_rejected_row_here() -> None:
    assert _row_types(ACCEPTED) == set(NON_RECEIVED_TYPES)
    assert _row_types(REJECTED) == set(NON_RECEIVED_TYPES)


def test_the_prose_table_names_every_event_type_and_rule() -> None:
    text = DOCS_ROOT.read_text(encoding="utf-8")
    rule_names = {rule.name for row_rules in rules.TRANSITIONS.values() for rule in row_rules}
    rule_names |= {"case_not_received", "already_received"}
    for name in sorted(set(t.EVENT_TYPES) | rule_names):
        assert f"`{name}`" in text, name


# ---------------------------------------------------------------- one test per row


@pytest.mark.parametrize(("steps", "command", "changes"), ACCEPTED)
def test_accepted(steps, command, changes) -> None:
    case = given(*steps)
    before = observable(case)

    returned, outcome = handle(case, command)

    assert returned is case
    assert outcome is Outcome.ACCEPTED
    assert observable(case) == {**before, **changes}
    [event] = case.pending_events
    assert (event.event_type, event.event_id) == (command.type, command.event_id)
    assert (event.source, event.occurred_at) == (command.source, command.occurred_at)
    assert command.event_id in case.event_ids


@pytest.mark.parametrize(("steps", "command", "rule"), REJECTED)
def test_rejected(steps, command, rule) -> None:
    case = given(*steps)
    before = snapshot(case)

    with pytest.raises(RuleViolation) as raised:
        handle(case, command)

    assert raised.value.rule == rule
    assert raised.value.event_type == command.type
    assert str(raised.value) == f"{command.type} rejected by rule {rule}: {raised.value.detail}"
    # a rejected event leaves the case exactly as it was
    assert case.pending_events == []
    assert snapshot(case) == before
    assert command.event_id not in case.event_ids


# ---------------------------------------------------------------- existence rules


def test_application_received_opens_the_case() -> None:
    command = cmd(t.RECEIVED)

    case, outcome = handle(None, command)

    assert outcome is Outcome.ACCEPTED
    assert case.id == case_id(APPLICATION_NUMBER)
    assert case.application_number == APPLICATION_NUMBER
    assert (case.category, case.received_on, case.preferred_language) == (
        "spouse",
        RECEIVED_ON,
        "en",
    )
    assert case.principal_applicant == Party(**person())
    assert case.sponsor is not None and case.sponsor.uci == "1234567890"
    assert case.representative is None
    assert case.acknowledged_on is None and case.outcome is None and case.interview is None
    assert all(
        (state.status, state.result, state.due_on) == (S.NOT_STARTED, None, None)
        for state in case.activities.values()
    )
    assert case.documents_requested == {}
    [event] = case.pending_events
    assert (event.event_type, event.event_id) == (t.RECEIVED, command.event_id)
    assert set(case.event_ids) == {command.event_id}


def test_application_received_keeps_the_representative_and_language() -> None:
    representative = {"name": "Cabinet Roy", "email": "info@roy.example", "membership_id": "R123"}

    case, _ = handle(
        None, cmd(t.RECEIVED, representative=representative, preferred_language="fr")
    )

    assert case.representative == Representative(**representative)
    assert case.preferred_language == "fr"


def test_application_received_twice_is_rejected_as_already_received() -> None:
    case = given(t.ACKNOWLEDGED)
    before = snapshot(case)

    with pytest.raises(RuleViolation) as raised:
        handle(case, cmd(t.RECEIVED, category="dependent_child"))

    assert raised.value.rule == "already_received"
    assert case.pending_events == []
    assert snapshot(case) == before


@pytest.mark.parametrize("event_type", NON_RECEIVED_TYPES)
def test_nothing_is_accepted_before_application_received(event_type: str) -> None:
    with pytest.raises(RuleViolation) as raised:
        handle(None, cmd(event_type))

    assert raised.value.rule == "case_not_received"
    assert raised.value.event_type == event_type


# ---------------------------------------------------------------- closed cases

# Every row that starts with case_closed; copr.issued and passport.requested
# instead need an approval (the case is closed by then) - see their rows.
CLOSED_CASE_TYPES = [
    event_type
    for event_type in NON_RECEIVED_TYPES
    if event_type not in (t.COPR_ISSUED, t.PASSPORT_REQUESTED)
]


@pytest.mark.parametrize(
    "closing",
    [
        pytest.param((t.WITHDRAWN,), id="withdrawn"),
        pytest.param((REFUSED,), id="refused"),
        pytest.param(APPROVED, id="approved"),
    ],
)
@pytest.mark.parametrize("event_type", CLOSED_CASE_TYPES)
def test_a_closed_case_rejects_everything_but_post_approval_events(
    event_type: str, closing: tuple
) -> None:
    case = given(*closing)
    before = snapshot(case)

    with pytest.raises(RuleViolation) as raised:
        handle(case, cmd(event_type))

    assert raised.value.rule == "case_closed"
    assert case.pending_events == []
    assert snapshot(case) == before


# ---------------------------------------------------------------- duplicates


@pytest.mark.parametrize(("steps", "command", "changes"), ACCEPTED)
def test_a_redelivered_event_is_a_duplicate_and_changes_nothing(steps, command, changes) -> None:
    # Most of these would break a rule if they were new (acknowledged twice,
    # documents received twice, decision on a closed case...): the duplicate
    # check comes first.
    case = given(*steps)
    handle(case, command)
    case.collect_events()
    before = snapshot(case)

    _, outcome = handle(case, redelivered(command))

    assert outcome is Outcome.DUPLICATE
    assert case.pending_events == []
    assert snapshot(case) == before


def test_a_redelivered_application_received_is_a_duplicate_not_already_received() -> None:
    received = cmd(t.RECEIVED)
    case = apply(None, received, t.ACKNOWLEDGED)
    case.collect_events()

    _, outcome = handle(case, redelivered(received))

    assert outcome is Outcome.DUPLICATE
    assert case.pending_events == []


def test_a_late_redelivery_after_the_case_closed_is_a_duplicate_not_case_closed() -> None:
    request = cmd(t.DOCUMENTS_REQUESTED)
    case = given(request, t.WITHDRAWN)
    before = snapshot(case)

    _, outcome = handle(case, redelivered(request))

    assert outcome is Outcome.DUPLICATE
    assert case.pending_events == []
    assert snapshot(case) == before


# A redelivery is a duplicate only if it carries the same event as recorded:
# type, source, occurred_at (as an instant) and every payload field.
CONFLICTING = {
    "other type":        dict(type=t.WITHDRAWN, payload={}),
    "other payload":     dict(payload={"documents": [DOCUMENT], "due_on": date(2024, 6, 1)}),
    "other document":    dict(payload={"documents": ["passport_copy"], "due_on": DUE_ON}),
    "other instant":     dict(occurred_at=OCCURRED_AT + timedelta(seconds=1)),
    "other source":      dict(source="gcms-bio"),
}


@pytest.mark.parametrize("changes", CONFLICTING.values(), ids=CONFLICTING.keys())
def test_a_redelivery_with_other_content_is_a_conflict_and_the_original_stays(changes) -> None:
    request = cmd(t.DOCUMENTS_REQUESTED)
    case = given(request)
    before = snapshot(case)

    with pytest.raises(RuleViolation) as raised:
        handle(case, redelivered(request, **changes))

    assert raised.value.rule == "conflicting_redelivery"
    assert case.pending_events == []
    assert snapshot(case) == before


def test_a_redelivered_application_received_with_another_party_is_a_conflict() -> None:
    received = cmd(t.RECEIVED)
    case = apply(None, received)
    case.collect_events()

    with pytest.raises(RuleViolation) as raised:
        handle(case, redelivered(received, payload={
            **received.payload, "sponsor": person(uci="1234567890", family_name="Other")}))

    assert raised.value.rule == "conflicting_redelivery"
    assert case.sponsor is not None and case.sponsor.family_name == "Lambert"


def _other(value):
    """A different value of the same shape (the domain trusts the contract's formats)."""
    if isinstance(value, datetime):
        return value + timedelta(minutes=1)
    if isinstance(value, date):
        return value + timedelta(days=1)
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [*value, "other_document"]
    if isinstance(value, dict):
        return {key: _other(item) for key, item in value.items()}
    return date(2020, 1, 1)  # None: an optional field now sent


# Every payload field of every accepted row: a redelivery that changes it alone.
PAYLOAD_FIELDS = [
    pytest.param(steps, command, field, id=f"{param.id}:{field}")
    for param in ACCEPTED
    for steps, command, _ in [param.values]
    for field in command.payload
]


@pytest.mark.parametrize(("steps", "command", "field"), PAYLOAD_FIELDS)
def test_every_payload_field_is_compared_on_redelivery(steps, command, field) -> None:
    case = given(*steps, command)
    changed = {**command.payload, field: _other(command.payload[field])}

    with pytest.raises(RuleViolation) as raised:
        handle(case, redelivered(command, payload=changed))

    assert raised.value.rule == "conflicting_redelivery"


@pytest.mark.parametrize("field", list(cmd(t.RECEIVED).payload))
def test_every_field_of_application_received_is_compared_on_redelivery(field) -> None:
    received = cmd(t.RECEIVED)
    case = apply(None, received)
    changed = {**received.payload, field: _other(received.payload[field])}

    with pytest.raises(RuleViolation) as raised:
        handle(case, redelivered(received, payload=changed))

    assert raised.value.rule == "conflicting_redelivery"


def test_the_same_instant_at_another_offset_is_the_same_event() -> None:
    request = cmd(t.INTERVIEW_SCHEDULED)
    case = given(request)
    montreal = timezone(timedelta(hours=-4))

    _, outcome = handle(case, redelivered(
        request,
        occurred_at=request.occurred_at.astimezone(montreal),
        payload={"scheduled_for": INTERVIEW_AT.astimezone(montreal)},
    ))

    assert outcome is Outcome.DUPLICATE
    assert case.pending_events == []


def test_a_rejected_event_is_not_remembered_and_is_accepted_once_valid() -> None:
    completed = cmd(t.INTERVIEW_COMPLETED)
    case = given()
    with pytest.raises(RuleViolation):
        handle(case, completed)

    apply(case, t.INTERVIEW_SCHEDULED)
    _, outcome = handle(case, redelivered(completed))

    assert outcome is Outcome.ACCEPTED
    assert case.interview == "completed"


def test_replaying_the_recorded_events_rebuilds_the_case_and_its_seen_event_ids() -> None:
    case = apply(None, t.RECEIVED, *APPROVED[:-1], t.DOCUMENTS_REQUESTED, t.DECISION_MADE,
                 t.PASSPORT_REQUESTED, t.COPR_ISSUED)
    events = case.collect_events()

    rebuilt: Case | None = None
    for event in events:
        rebuilt = event.mutate(rebuilt)

    assert rebuilt is not None
    assert snapshot(rebuilt) == snapshot(case)
    _, outcome = handle(rebuilt, redelivered(cmd(t.ACKNOWLEDGED), event_id=events[1].event_id))
    assert outcome is Outcome.DUPLICATE


# ---------------------------------------------------------------- why notes, pinned down


ACTIVITY_OPENERS = [
    "sponsor_eligibility.started",
    "eligibility.started",
    "biometrics.requested",
    "biometrics.exempted",
    "medical.requested",
    "medical.exempted",
    "background_check.started",
]


@pytest.mark.parametrize("event_type", ACTIVITY_OPENERS)
def test_activities_may_start_before_the_acknowledgement_of_receipt(event_type: str) -> None:
    # IRCC sends biometrics instructions with, or before, the AOR.
    case = given()
    assert case.acknowledged_on is None

    _, outcome = handle(case, cmd(event_type))

    assert outcome is Outcome.ACCEPTED


APPROVAL_NEEDS = [
    pytest.param(Activity.ELIGIBILITY, "eligibility met", id="eligibility"),
    pytest.param(Activity.SPONSOR_ELIGIBILITY, "sponsor_eligibility met", id="sponsor_eligibility"),
    pytest.param(Activity.MEDICAL, "medical exempted or passed", id="medical"),
    pytest.param(Activity.BIOMETRICS, "biometrics completed or exempted", id="biometrics"),
    pytest.param(Activity.BACKGROUND_CHECK, "background_check completed", id="background_check"),
]


@pytest.mark.parametrize(("activity", "needed"), APPROVAL_NEEDS)
def test_approval_missing_one_prerequisite_names_it(activity: Activity, needed: str) -> None:
    case = given(*ready_for_approval_steps(skip=activity))

    with pytest.raises(RuleViolation) as raised:
        handle(case, cmd(t.DECISION_MADE))

    assert raised.value.rule == "approval_prerequisites"
    assert raised.value.detail == f"approval requires {needed}"
    assert case.pending_events == [] and case.outcome is None


@pytest.mark.parametrize(
    ("unfinished", "needed"),
    [
        pytest.param("eligibility.started", "eligibility met", id="eligibility-in-progress"),
        pytest.param("eligibility.not_met", "eligibility met", id="eligibility-not-met"),
        pytest.param(
            "sponsor_eligibility.not_met", "sponsor_eligibility met", id="sponsor-not-met"
        ),
        pytest.param("medical.failed", "medical exempted or passed", id="medical-failed"),
        pytest.param("medical.requested", "medical exempted or passed", id="medical-requested"),
        pytest.param(
            "biometrics.requested", "biometrics completed or exempted", id="biometrics-requested"
        ),
        pytest.param(
            "background_check.started", "background_check completed", id="background-in-progress"
        ),
    ],
)
def test_approval_needs_the_accepted_result_not_just_a_finished_activity(
    unfinished: str, needed: str
) -> None:
    activity = Activity(unfinished.partition(".")[0])
    steps = [*ready_for_approval_steps(skip=activity)]
    opener = ACTIVITY_DONE[activity][0]
    steps += [unfinished] if unfinished == opener else [opener, unfinished]
    case = given(*steps)

    with pytest.raises(RuleViolation) as raised:
        handle(case, cmd(t.DECISION_MADE))

    assert raised.value.rule == "approval_prerequisites"
    assert raised.value.detail == f"approval requires {needed}"


def test_approval_with_nothing_assessed_lists_every_prerequisite_in_order() -> None:
    with pytest.raises(RuleViolation) as raised:
        handle(given(t.ACKNOWLEDGED), cmd(t.DECISION_MADE))

    assert raised.value.detail == (
        "approval requires eligibility met, sponsor_eligibility met, "
        "medical exempted or passed, biometrics completed or exempted, "
        "background_check completed"
    )


def test_decision_rules_are_checked_in_table_order() -> None:
    # no AOR, nothing assessed and an interview pending: the AOR is named first
    case = given(t.INTERVIEW_SCHEDULED)
    with pytest.raises(RuleViolation) as raised:
        handle(case, cmd(t.DECISION_MADE))
    assert raised.value.rule == "not_acknowledged"

    # then the prerequisites, before the pending interview
    apply(case, t.ACKNOWLEDGED)
    with pytest.raises(RuleViolation) as raised:
        handle(case, cmd(t.DECISION_MADE))
    assert raised.value.rule == "approval_prerequisites"


def test_a_completed_interview_unblocks_the_approval() -> None:
    case = ready_for_approval(t.INTERVIEW_SCHEDULED)
    with pytest.raises(RuleViolation, match="interview_pending"):
        handle(case, cmd(t.DECISION_MADE))

    apply(case, t.INTERVIEW_COMPLETED)
    _, outcome = handle(case, cmd(t.DECISION_MADE))

    assert outcome is Outcome.ACCEPTED and case.outcome == "approved"


def test_passport_is_requested_before_the_copr_is_issued() -> None:
    case = approved(t.PASSPORT_REQUESTED, t.COPR_ISSUED)
    assert case.passport_requested_on == OCCURRED_AT.date()
    assert case.copr_issued_on == OCCURRED_AT.date()

    with pytest.raises(RuleViolation) as raised:
        handle(case, cmd(t.PASSPORT_REQUESTED))

    assert raised.value.rule == "copr_already_issued"


def test_a_refusal_needs_no_acknowledgement_and_no_prerequisite() -> None:
    case = given(t.INTERVIEW_SCHEDULED, "medical.requested", "medical.failed")

    _, outcome = handle(case, REFUSED)

    assert outcome is Outcome.ACCEPTED
    assert case.outcome == "refused"


def test_rule_messages_carry_no_personal_data() -> None:
    case = given()
    party = person()
    for command in (cmd(t.DECISION_MADE), cmd(t.COPR_ISSUED), cmd(t.RECEIVED)):
        with pytest.raises(RuleViolation) as raised:
            handle(case, command)
        for value in (party["given_name"], party["family_name"], party["uci"]):
            assert value not in str(raised.value)

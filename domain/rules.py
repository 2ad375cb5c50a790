"""The transition table: which inbound event a case accepts in which state.

docs/state-machine.md is this table in prose; tests/unit/test_state_machine.py
has one test per row. Each rule is a named predicate over the case and the
event's payload; an event is accepted when every rule of its row holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain import catalogue as t
from domain.activities import APPROVAL_REQUIRES, Activity, ActivityStatus, Change

if TYPE_CHECKING:
    from domain.case import Case

Payload = Mapping[str, Any]


class RuleViolation(Exception):
    """An event the case cannot accept in its current state.

    ``rule`` is a stable machine-readable name; the message says why, with no
    personal data in it.
    """

    def __init__(self, rule: str, event_type: str, detail: str) -> None:
        super().__init__(f"{event_type} rejected by rule {rule}: {detail}")
        self.rule = rule
        self.event_type = event_type
        self.detail = detail


@dataclass(frozen=True)
class Rule:
    name: str
    detail: str
    holds: Callable[[Case, Payload], bool]
    explain: Callable[[Case, Payload], str] | None = None

    def check(self, case: Case, event_type: str, payload: Payload) -> None:
        if not self.holds(case, payload):
            detail = self.explain(case, payload) if self.explain else self.detail
            raise RuleViolation(self.name, event_type, detail)


def _missing_for_approval(case: Case) -> list[str]:
    missing = []
    for activity, accepted in APPROVAL_REQUIRES.items():
        if case.activities[activity].result not in accepted:
            wanted = " or ".join(sorted(accepted))
            missing.append(f"{activity} {wanted}")
    return missing


CASE_OPEN = Rule(
    "case_closed",
    "the case is closed (decision made or application withdrawn)",
    lambda case, _: case.outcome is None,
)
NOT_ACKNOWLEDGED = Rule(
    "already_acknowledged",
    "the acknowledgement of receipt was already recorded",
    lambda case, _: case.acknowledged_on is None,
)
ACKNOWLEDGED = Rule(
    "not_acknowledged",
    "an approval needs the acknowledgement of receipt first",
    lambda case, p: p.get("outcome") != "approved" or case.acknowledged_on is not None,
)
APPROVAL_PREREQUISITES = Rule(
    "approval_prerequisites",
    "",
    lambda case, p: p.get("outcome") != "approved" or not _missing_for_approval(case),
    lambda case, _: "approval requires " + ", ".join(_missing_for_approval(case)),
)
NO_PENDING_INTERVIEW = Rule(
    "interview_pending",
    "an approval cannot be made while a scheduled interview has not taken place",
    lambda case, p: p.get("outcome") != "approved" or case.interview != "scheduled",
)
DOCUMENTS_WERE_REQUESTED = Rule(
    "documents_not_requested",
    "documents received that are not in an open request",
    lambda case, p: set(p["documents"]) <= set(case.documents_requested),
)
INTERVIEW_SCHEDULED = Rule(
    "interview_not_scheduled",
    "an interview must be scheduled before it is completed",
    lambda case, _: case.interview == "scheduled",
)
APPROVED = Rule(
    "requires_approval",
    "only an approved application can have this event",
    lambda case, _: case.outcome == "approved",
)
COPR_NOT_ISSUED = Rule(
    "copr_already_issued",
    "the confirmation of permanent residence was already issued",
    lambda case, _: case.copr_issued_on is None,
)


def _activity_rule(name: str, detail: str, activity: Activity, *allowed: ActivityStatus) -> Rule:
    return Rule(
        name, f"{activity}: {detail}", lambda case, _: case.activities[activity].status in allowed
    )


def _activity_row(activity: Activity, change: Change) -> tuple[Rule, ...]:
    s = ActivityStatus
    if change is Change.STARTED:
        rule = _activity_rule(
            "activity_already_started", "already started", activity, s.NOT_STARTED
        )
    elif change in (Change.REQUESTED, Change.EXEMPTED):
        rule = _activity_rule(
            "activity_already_finished",
            "already completed or exempted",
            activity,
            s.NOT_STARTED,
            s.ACTION_REQUIRED,
        )
    elif activity in (Activity.BIOMETRICS, Activity.MEDICAL):
        rule = _activity_rule(
            "activity_not_requested", "must be requested first", activity, s.ACTION_REQUIRED
        )
    else:
        rule = _activity_rule(
            "activity_not_started", "must be started first", activity, s.IN_PROGRESS
        )
    return (CASE_OPEN, rule)


def _build_table() -> dict[str, tuple[Rule, ...]]:
    from domain.activities import CHANGES

    table: dict[str, tuple[Rule, ...]] = {
        # application.received is decided by whether the case exists: see domain.case.handle.
        t.ACKNOWLEDGED: (CASE_OPEN, NOT_ACKNOWLEDGED),
        t.DOCUMENTS_REQUESTED: (CASE_OPEN,),
        t.DOCUMENTS_RECEIVED: (CASE_OPEN, DOCUMENTS_WERE_REQUESTED),
        t.INTERVIEW_SCHEDULED: (CASE_OPEN,),
        t.INTERVIEW_COMPLETED: (CASE_OPEN, INTERVIEW_SCHEDULED),
        t.DECISION_MADE: (CASE_OPEN, ACKNOWLEDGED, APPROVAL_PREREQUISITES, NO_PENDING_INTERVIEW),
        t.WITHDRAWN: (CASE_OPEN,),
        t.COPR_ISSUED: (APPROVED, COPR_NOT_ISSUED),
        t.PASSPORT_REQUESTED: (APPROVED, COPR_NOT_ISSUED),
        t.CORRESPONDENCE_SENT: (CASE_OPEN,),
    }
    for activity, changes in CHANGES.items():
        for change in changes:
            table[f"{activity}.{change}"] = _activity_row(activity, change)
    return table


TRANSITIONS: dict[str, tuple[Rule, ...]] = _build_table()


def check(case: Case, event_type: str, payload: Payload) -> None:
    """Raise RuleViolation naming the first rule the event breaks."""
    for rule in TRANSITIONS[event_type]:
        rule.check(case, event_type, payload)

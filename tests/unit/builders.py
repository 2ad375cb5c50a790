"""Small builders for unit tests: commands, cases in a given state, their events and
status view, contract messages.

Two shapes of the same events live here:

* ``DOMAIN_PAYLOADS``: payloads as the domain expects them (``datetime.date``
  for dates, dicts for parties), used to build ``RecordCaseEvent`` commands;
* ``JSON_PAYLOADS``: the same payloads as they travel on the wire (ISO strings),
  used to build raw contract v1 messages for ``parse_event``.

``tests/unit/test_contract.py`` checks that parsing the second gives the first.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from domain import catalogue as t
from domain.activities import Activity
from domain.case import Case, handle
from domain.commands import RecordCaseEvent
from projections import case_status

APPLICATION_NUMBER = "F000123456"
SOURCE = "gcms"
OCCURRED_AT = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
RECEIVED_ON = date(2024, 1, 15)
ACKNOWLEDGED_ON = date(2024, 2, 20)
DUE_ON = date(2024, 4, 30)
INTERVIEW_AT = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
DOCUMENT = "police_certificate"


def person(**overrides: Any) -> dict[str, Any]:
    """A party as the domain gets it: date_of_birth is a ``date``."""
    party: dict[str, Any] = {
        "uci": "12345678",
        "given_name": "Marie",
        "family_name": "Lambert",
        "date_of_birth": date(1990, 6, 1),
        "email": None,
    }
    party.update(overrides)
    return party


# Minimal valid payload of every event type, in the domain's shape (what
# consumers.contract.parse_event hands over: optional fields present as None).
DOMAIN_PAYLOADS: dict[str, dict[str, Any]] = {
    t.RECEIVED: {
        "category": "spouse",
        "received_on": RECEIVED_ON,
        "principal_applicant": person(),
        "sponsor": person(uci="1234567890", given_name="Paul", date_of_birth=date(1988, 2, 3)),
        "representative": None,
        "preferred_language": "en",
    },
    t.ACKNOWLEDGED: {"acknowledged_on": ACKNOWLEDGED_ON},
    "sponsor_eligibility.started": {},
    "sponsor_eligibility.met": {},
    "sponsor_eligibility.not_met": {},
    "eligibility.started": {},
    "eligibility.met": {},
    "eligibility.not_met": {},
    "biometrics.requested": {"due_on": DUE_ON},
    "biometrics.completed": {"completed_on": None},
    "biometrics.exempted": {},
    "medical.requested": {"due_on": DUE_ON},
    "medical.passed": {"completed_on": None},
    "medical.failed": {"completed_on": None},
    "medical.exempted": {},
    "background_check.started": {},
    "background_check.completed": {"completed_on": None},
    t.DOCUMENTS_REQUESTED: {"documents": [DOCUMENT], "due_on": DUE_ON},
    t.DOCUMENTS_RECEIVED: {"documents": [DOCUMENT]},
    t.INTERVIEW_SCHEDULED: {"scheduled_for": INTERVIEW_AT},
    t.INTERVIEW_COMPLETED: {},
    t.DECISION_MADE: {"outcome": "approved", "decided_on": None},
    t.WITHDRAWN: {},
    t.COPR_ISSUED: {"issued_on": None},
    t.PASSPORT_REQUESTED: {"due_on": None},
    t.CORRESPONDENCE_SENT: {"subject": "Acknowledgement of receipt"},
}


def _to_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    return value


JSON_PAYLOADS: dict[str, dict[str, Any]] = {
    event_type: _to_json(payload) for event_type, payload in DOMAIN_PAYLOADS.items()
}


# ---------------------------------------------------------------- commands


def cmd(type_: str, /, **payload: Any) -> RecordCaseEvent:
    """A command of ``type_``: the default payload of that type, overridden by ``payload``.

    Every call gets a fresh uuid4 event_id.
    """
    merged = copy.deepcopy(DOMAIN_PAYLOADS[type_])
    merged.update(payload)
    return RecordCaseEvent(
        event_id=uuid.uuid4(),
        type=type_,
        application_number=APPLICATION_NUMBER,
        occurred_at=OCCURRED_AT,
        source=SOURCE,
        payload=merged,
    )


def redelivered(command: RecordCaseEvent, **changes: Any) -> RecordCaseEvent:
    """The same event (same event_id) delivered again, optionally with other fields."""
    return dataclasses.replace(command, **changes)


Step = str | RecordCaseEvent


def apply(case: Case | None, *steps: Step) -> Case:
    """Feed steps (an event type for its default payload, or a command) through ``handle``."""
    for step in steps:
        command = cmd(step) if isinstance(step, str) else step
        case, _ = handle(case, command)
    assert case is not None
    return case


def given(*steps: Step) -> Case:
    """A received case after ``steps``, with no pending events left."""
    case = apply(None, t.RECEIVED, *steps)
    case.collect_events()
    return case


def events_of(*steps: Step) -> list[Case.Event]:
    """The events of a case received, then taken through ``steps``."""
    case = apply(None, t.RECEIVED, *steps)
    return list(case.collect_events())  # type: ignore[arg-type]  # a Case raises Case.Events


def view_of(*steps: Step) -> case_status.View:
    """The status view of a case received, then taken through ``steps``."""
    view = case_status.fold(events_of(*steps))
    assert view is not None
    return view


# Steps that finish each activity with an outcome an approval accepts.
ACTIVITY_DONE: dict[Activity, tuple[str, ...]] = {
    Activity.SPONSOR_ELIGIBILITY: ("sponsor_eligibility.started", "sponsor_eligibility.met"),
    Activity.ELIGIBILITY: ("eligibility.started", "eligibility.met"),
    Activity.MEDICAL: ("medical.requested", "medical.passed"),
    Activity.BIOMETRICS: ("biometrics.requested", "biometrics.completed"),
    Activity.BACKGROUND_CHECK: ("background_check.started", "background_check.completed"),
}


def ready_for_approval_steps(*, skip: Activity | None = None) -> tuple[str, ...]:
    """Acknowledgement plus every approval prerequisite (except ``skip``)."""
    steps: list[str] = [t.ACKNOWLEDGED]
    for activity, done in ACTIVITY_DONE.items():
        if activity is not skip:
            steps.extend(done)
    return tuple(steps)


def ready_for_approval(*extra: Step) -> Case:
    return given(*ready_for_approval_steps(), *extra)


def approved(*extra: Step) -> Case:
    return given(*ready_for_approval_steps(), t.DECISION_MADE, *extra)


def snapshot(case: Case) -> dict[str, Any]:
    """Every piece of a case's state, deep-copied, to compare before and after."""
    return copy.deepcopy({k: v for k, v in vars(case).items() if k != "_pending_events"})


def observable(case: Case) -> dict[str, Any]:
    """A flat view of what the tracker shows, to assert exactly what an event changed."""
    view: dict[str, Any] = {
        "acknowledged_on": case.acknowledged_on,
        "documents_requested": dict(case.documents_requested),
        "interview": case.interview,
        "interview_at": case.interview_at,
        "outcome": case.outcome,
        "copr_issued_on": case.copr_issued_on,
        "passport_requested_on": case.passport_requested_on,
    }
    for activity, state in case.activities.items():
        view[str(activity)] = (state.status, state.result, state.due_on)
    return view


# ---------------------------------------------------------------- contract messages


def envelope(type_: str, payload: Any = None, **overrides: Any) -> dict[str, Any]:
    """A valid contract v1 message as a dict; ``payload`` defaults to the type's JSON payload."""
    message: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "schema_version": 1,
        "application_number": APPLICATION_NUMBER,
        "occurred_at": OCCURRED_AT.isoformat(),
        "source": SOURCE,
        "payload": copy.deepcopy(JSON_PAYLOADS[type_]) if payload is None else payload,
    }
    message.update(overrides)
    return message


def raw(message: dict[str, Any]) -> str:
    return json.dumps(message)

"""The Case aggregate: one per application, one stored event per accepted inbound event.

Every event keeps the producer's envelope (event_id, type, source,
occurred_at); the library's ``timestamp`` is when casetrack recorded it.
The case remembers a fingerprint of each event it holds, by event_id, to tell
a redelivery of that event (a duplicate) from another event under the same
event_id (a conflict, rejected: the original stays).
Event classes carry ``class_version``; bump it and add ``upcast_vN_vN+1``
when a field changes, so old stored events still load.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate

from domain import catalogue as t
from domain import rules
from domain.activities import STATUS_AFTER, Activity, ActivityStatus, Change, split_activity_type
from domain.application_number import case_id
from domain.commands import Outcome, RecordCaseEvent
from domain.personal_data import ERASED, ERASURE_REASONS, is_erased


@dataclass
class ActivityState:
    status: ActivityStatus = ActivityStatus.NOT_STARTED
    result: Change | None = None
    due_on: date | None = None


@dataclass(frozen=True)
class Party:
    """A person on the file. Personal data: never log it."""

    uci: str
    given_name: str
    family_name: str
    date_of_birth: date | None  # None once erased
    email: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Party:
        born = data["date_of_birth"]
        return cls(
            uci=data["uci"],
            given_name=data["given_name"],
            family_name=data["family_name"],
            date_of_birth=None if is_erased(born) else date.fromisoformat(born),
            email=data.get("email"),
        )

    @classmethod
    def erased(cls, had_email: bool) -> Party:
        return cls(ERASED, ERASED, ERASED, None, ERASED if had_email else None)


@dataclass(frozen=True)
class Representative:
    name: str
    email: str
    membership_id: str | None = None


class Case(Aggregate):
    def __init__(self) -> None:
        self.application_number = ""
        self.category = ""
        self.received_on: date | None = None
        self.preferred_language = "en"
        self.principal_applicant: Party | None = None
        self.sponsor: Party | None = None
        self.representative: Representative | None = None
        self.acknowledged_on: date | None = None
        self.activities = {a: ActivityState() for a in Activity}
        self.documents_requested: dict[str, date | None] = {}
        self.interview: str | None = None  # None, "scheduled" or "completed"
        self.interview_at: datetime | None = None
        self.outcome: str | None = None  # approved, refused or withdrawn
        self.copr_issued_on: date | None = None
        self.passport_requested_on: date | None = None
        self.event_ids: dict[UUID, bytes] = {}  # event_id -> fingerprint of its event
        self.erased: set[str] = set()  # the subjects whose personal data is erased
        # Subjects whose keys the store found destroyed though no personal_data.erased
        # event says so yet (an erasure that died halfway): refused all the same.
        self.keys_destroyed: set[str] = set()

    class Event(Aggregate.Event):
        """Base of every case event: the producer's envelope, kept verbatim."""

        event_id: UUID
        event_type: str
        source: str
        occurred_at: datetime

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            aggregate.event_ids[self.event_id] = self.fingerprint()
            self.apply_to_case(aggregate)

        def fingerprint(self) -> bytes:
            fields = {name: getattr(self, name) for name in _fields_of(type(self))}
            return fingerprint(self.event_type, self.source, self.occurred_at, fields)

        def apply_to_case(self, case: Case) -> None:
            """Evolve the case's state; events that only add to history do nothing."""

    class Received(Event, Aggregate.Created):
        class_version = 1
        application_number: str
        category: str
        received_on: date
        principal_applicant: dict[str, Any]
        sponsor: dict[str, Any]
        representative: dict[str, Any] | None
        preferred_language: str

        def apply_to_case(self, case: Case) -> None:
            case.application_number = self.application_number
            case.category = self.category
            case.received_on = self.received_on
            case.preferred_language = self.preferred_language
            case.principal_applicant = Party.from_dict(self.principal_applicant)
            case.sponsor = Party.from_dict(self.sponsor)
            if self.representative is not None:
                case.representative = Representative(**self.representative)

    class Acknowledged(Event):
        class_version = 1
        acknowledged_on: date

        def apply_to_case(self, case: Case) -> None:
            case.acknowledged_on = self.acknowledged_on

    class ActivityChanged(Event):
        """Any ``<activity>.<change>`` event: started, requested, met, passed..."""

        class_version = 1
        activity: str
        change: str
        due_on: date | None
        completed_on: date | None

        def apply_to_case(self, case: Case) -> None:
            change = Change(self.change)
            state = case.activities[Activity(self.activity)]
            state.status = STATUS_AFTER[change]
            state.due_on = self.due_on if change is Change.REQUESTED else None
            if state.status in (ActivityStatus.COMPLETED, ActivityStatus.NOT_REQUIRED):
                state.result = change

    class DocumentsRequested(Event):
        class_version = 1
        documents: list[str]
        due_on: date | None

        def apply_to_case(self, case: Case) -> None:
            for document in self.documents:
                case.documents_requested[document] = self.due_on

    class DocumentsReceived(Event):
        class_version = 1
        documents: list[str]

        def apply_to_case(self, case: Case) -> None:
            for document in self.documents:
                case.documents_requested.pop(document, None)

    class InterviewScheduled(Event):
        class_version = 1
        scheduled_for: datetime

        def apply_to_case(self, case: Case) -> None:
            case.interview = "scheduled"
            case.interview_at = self.scheduled_for

    class InterviewCompleted(Event):
        class_version = 1

        def apply_to_case(self, case: Case) -> None:
            case.interview = "completed"

    class DecisionMade(Event):
        class_version = 1
        outcome: str
        decided_on: date | None

        def apply_to_case(self, case: Case) -> None:
            case.outcome = self.outcome

    class Withdrawn(Event):
        class_version = 1

        def apply_to_case(self, case: Case) -> None:
            case.outcome = "withdrawn"

    class CoprIssued(Event):
        class_version = 1
        issued_on: date | None

        def apply_to_case(self, case: Case) -> None:
            case.copr_issued_on = self.issued_on or self.occurred_at.date()

    class PassportRequested(Event):
        class_version = 1
        due_on: date | None

        def apply_to_case(self, case: Case) -> None:
            case.passport_requested_on = self.occurred_at.date()

    class CorrespondenceSent(Event):
        """History only: a letter or message went to the client."""

        class_version = 1
        subject: str

    class PersonalDataErased(Event):
        """The data keys of these subjects were destroyed (crypto-shredding): their values
        in every earlier event now read as ERASED. Holds no personal data itself: who asked
        is an operator's account name, the reason a code (personal_data.ERASURE_REASONS)."""

        class_version = 1
        subjects: list[str]
        reason: str
        requested_by: str

        def apply_to_case(self, case: Case) -> None:
            case.erased.update(self.subjects)
            for subject in self.subjects:
                if subject == "representative" and case.representative is not None:
                    case.representative = Representative(ERASED, ERASED, ERASED)
                elif subject in ("principal_applicant", "sponsor"):
                    party: Party | None = getattr(case, subject)
                    if party is not None:
                        setattr(case, subject, Party.erased(party.email is not None))

    # ---- commands -------------------------------------------------------

    @classmethod
    def receive(cls, command: RecordCaseEvent) -> Case:
        """Open a case from its ``application.received`` event."""
        if command.type != t.RECEIVED:
            raise rules.RuleViolation(
                "case_not_received", command.type, "no application.received for this case"
            )
        _, fields = _event_for(command)
        return cls._create(
            Case.Received, id=case_id(command.application_number), **_envelope(command), **fields
        )

    def record(self, command: RecordCaseEvent) -> Outcome:
        """Append the event if the rules allow it; a redelivery of an event the case
        holds is a no-op, another event under its event_id a conflict."""
        held = self.event_ids.get(command.event_id)
        if (self.erased or self.keys_destroyed) and _needs_erased_subject(self, command):
            raise rules.RuleViolation(
                "personal_data_erased",
                command.type,
                "it holds personal data of a person on this file whose data was erased",
            )
        if held is not None:
            if held != _fingerprint(command):
                raise rules.RuleViolation(
                    "conflicting_redelivery",
                    command.type,
                    "the case holds another event under this event_id; the original is kept",
                )
            return Outcome.DUPLICATE
        if command.type == t.RECEIVED:
            raise rules.RuleViolation(
                "already_received", command.type, "the case already has application.received"
            )
        rules.check(self, command.type, command.payload)
        event_class, fields = _event_for(command)
        self.trigger_event(event_class, **_envelope(command), **fields)
        return Outcome.ACCEPTED

    def erase_personal_data(
        self, subjects: list[str], reason: str, requested_by: str, envelope: dict[str, Any]
    ) -> bool:
        """Record that these subjects' keys are destroyed; False (nothing recorded) when
        every one of them already is, so an erasure run again appends nothing."""
        if reason not in ERASURE_REASONS:
            raise ValueError(f"the erasure reason must be one of {', '.join(ERASURE_REASONS)}")
        present = [s for s in subjects if s != "representative" or self.representative]
        fresh = sorted(set(present) - self.erased)
        if not fresh:
            return False
        self.trigger_event(
            Case.PersonalDataErased,
            **envelope,
            subjects=fresh,
            reason=reason,
            requested_by=requested_by,
        )
        return True


def _needs_erased_subject(case: Case, command: RecordCaseEvent) -> bool:
    """An event that would add personal data of an erased subject (a new key for them
    would silently bring them back): a correspondence subject once the principal
    applicant is erased, or a redelivered application.received."""
    if command.type == t.RECEIVED:
        return True
    gone = case.erased | case.keys_destroyed
    return command.type == t.CORRESPONDENCE_SENT and "principal_applicant" in gone


def handle(case: Case | None, command: RecordCaseEvent) -> tuple[Case, Outcome]:
    """Apply one command to a case that may not exist yet; raises RuleViolation."""
    if case is None:
        return Case.receive(command), Outcome.ACCEPTED
    return case, case.record(command)


def _envelope(command: RecordCaseEvent) -> dict[str, Any]:
    return {
        "event_id": command.event_id,
        "event_type": command.type,
        "source": command.source,
        "occurred_at": command.occurred_at,
    }


def _party(data: dict[str, Any]) -> dict[str, Any]:
    party = dict(data)
    party["date_of_birth"] = party["date_of_birth"].isoformat()
    return party


def fingerprint(
    event_type: str, source: str, occurred_at: datetime, fields: Mapping[str, Any]
) -> bytes:
    """What a redelivery must repeat to be a duplicate (docs/events.md, Idempotency):
    the event as casetrack records it, by value. Timestamps count as instants, so
    the same moment written with another offset is the same event."""
    values = {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in fields.items()}
    canonical = orjson.dumps(
        [event_type, source, occurred_at.astimezone(UTC), values], option=orjson.OPT_SORT_KEYS
    )
    return hashlib.blake2b(canonical, digest_size=16).digest()


def _fingerprint(command: RecordCaseEvent) -> bytes:
    """The fingerprint of the event ``command`` would record."""
    _, fields = _event_for(command)
    return fingerprint(command.type, command.source, command.occurred_at, fields)


@cache
def _fields_of(event_class: type[Case.Event]) -> tuple[str, ...]:
    """The fields an event class adds to the envelope (its own annotations)."""
    return tuple(inspect.get_annotations(event_class))


def _event_for(command: RecordCaseEvent) -> tuple[type[Case.Event], dict[str, Any]]:
    p = command.payload
    if command.type == t.RECEIVED:
        return Case.Received, {
            "application_number": command.application_number,
            "category": p["category"],
            "received_on": p["received_on"],
            "principal_applicant": _party(p["principal_applicant"]),
            "sponsor": _party(p["sponsor"]),
            "representative": p.get("representative"),
            "preferred_language": p["preferred_language"],
        }
    activity_change = split_activity_type(command.type)
    if activity_change is not None:
        activity, change = activity_change
        return Case.ActivityChanged, {
            "activity": str(activity),
            "change": str(change),
            "due_on": p.get("due_on"),
            "completed_on": p.get("completed_on"),
        }
    simple: dict[str, tuple[type[Case.Event], tuple[str, ...]]] = {
        t.ACKNOWLEDGED: (Case.Acknowledged, ("acknowledged_on",)),
        t.DOCUMENTS_REQUESTED: (Case.DocumentsRequested, ("documents", "due_on")),
        t.DOCUMENTS_RECEIVED: (Case.DocumentsReceived, ("documents",)),
        t.INTERVIEW_SCHEDULED: (Case.InterviewScheduled, ("scheduled_for",)),
        t.INTERVIEW_COMPLETED: (Case.InterviewCompleted, ()),
        t.DECISION_MADE: (Case.DecisionMade, ("outcome", "decided_on")),
        t.WITHDRAWN: (Case.Withdrawn, ()),
        t.COPR_ISSUED: (Case.CoprIssued, ("issued_on",)),
        t.PASSPORT_REQUESTED: (Case.PassportRequested, ("due_on",)),
        t.CORRESPONDENCE_SENT: (Case.CorrespondenceSent, ("subject",)),
    }
    event_class, names = simple[command.type]
    return event_class, {name: _plain(p.get(name)) for name in names}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value

"""Request and response bodies: pydantic validates input before any query, and the
same models document the answers in the OpenAPI document."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from domain import application_number as numbers
from domain.catalogue import Language as Lang
from projections.roles import Role

NumberInPath = Annotated[
    str, Path(pattern=numbers.PATTERN.pattern, description="e.g. F123456789")
]  # an application number in a URL: checked before any query
ApplicationNumber = Annotated[
    str,
    StringConstraints(pattern=numbers.PATTERN.pattern),
    Field(description="One uppercase letter and nine digits", examples=["F123456789"]),
]
Uci = Annotated[
    str,
    StringConstraints(pattern=r"^([0-9]{8}|[0-9]{10})$"),
    Field(description="Unique client identifier: 8 or 10 digits"),
]
# No control characters (NUL above all: PostgreSQL text cannot hold it).
FamilyName = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,100}$")]
MembershipId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9-]{3,20}$")]
Login = Annotated[
    str,
    StringConstraints(
        pattern=r"^([0-9]{8}|[0-9]{10}|[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,189})$",
        max_length=254,
    ),
    Field(description="A UCI (applicants and sponsors) or an email (representatives)"),
]
Code = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{8}$"), Field(description="The emailed code")
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=128)]
NewPassword = Annotated[
    str,
    StringConstraints(min_length=12, max_length=128),
    Field(
        description="At least 12 characters, 5 of them different; not containing the login or"
        " the family name on file; hard to guess (zxcvbn score 3: at least 10^8 guesses)"
    ),
]


HashHex = Annotated[
    str, StringConstraints(pattern=r"^[0-9a-f]{64}$"), Field(description="SHA-256, lowercase hex")
]
_UNHASHED = (
    "{}; null when the event has no hashes (a log not backfilled, or an altered one:"
    " run `casetrack audit verify`)"
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplicantRegistration(_In):
    """A principal applicant or sponsor: details as on the file."""

    role: Literal["principal_applicant", "sponsor"]
    application_number: ApplicationNumber
    family_name: FamilyName
    uci: Uci
    date_of_birth: date


class RepresentativeRegistration(_In):
    """An authorised representative: family name, email and membership id as on the file."""

    role: Literal["representative"]
    application_number: ApplicationNumber
    family_name: FamilyName
    email: EmailStr
    membership_id: MembershipId | None = None


Registration = Annotated[
    ApplicantRegistration | RepresentativeRegistration, Field(discriminator="role")
]


class Verification(_In):
    login: Login
    code: Code
    password: NewPassword


class Credentials(_In):
    login: Login
    password: Password


class LinkRequest(_In):
    code: Code


class ResetRequest(_In):
    login: Login


class ResetConfirmation(_In):
    login: Login
    code: Code
    password: NewPassword


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str


class Activated(BaseModel):
    status: Literal["active"] = "active"


class Linked(BaseModel):
    application_number: str
    role: Role


class SessionToken(BaseModel):
    token: str = Field(description="Send as Authorization: Bearer <token>")
    expires_at: datetime


class ApplicationSummary(BaseModel):
    application_number: str
    role: Role
    status: str | None
    last_updated: str | None


class Applications(BaseModel):
    applications: list[ApplicationSummary]


class HistoryEntry(BaseModel):
    """One dated line, in the caller's language; a sponsor gets the overall milestones only."""

    title: str
    text: str
    occurred_at: datetime = Field(description="When it happened")
    recorded_at: datetime = Field(description="When casetrack recorded it")


class NextStep(BaseModel):
    kind: str
    due_on: date | None
    document: str | None = None


class Estimate(BaseModel):
    category: str
    quarter: str
    enough_data: bool
    similar_decided: int
    similar_open: int
    months: int | None
    percent: int | None
    months_elapsed: int
    text: str


class Contact(BaseModel):
    text: str


class ApplicationView(BaseModel):
    """The status view for the caller's role: fields a role may not see are absent."""

    application_number: str
    role: Role
    lang: Lang
    status: Literal["received", "in_progress", "closed"]
    received_on: date
    last_updated: datetime
    days_elapsed: int
    service_standard_days: int
    category: str | None = None
    outcome: str | None = None
    decided_on: date | None = None
    acknowledged_on: date | None = None
    preferred_language: str | None = None
    activities: dict[str, str] | None = None
    next_steps: list[NextStep] | None = None
    documents: dict[str, Any] | None = None
    estimate: Estimate | None = None
    history: list[HistoryEntry]
    contact: Contact


class History(BaseModel):
    application_number: str
    lang: Lang
    history: list[HistoryEntry]


class StateChange(BaseModel):
    """One field of the case state (the shape of ``state``) that an event changed."""

    path: str = Field(
        description="Keys into the state joined by dots (a key that is not an identifier as"
        ' ["key"]); a list changes as one value',
        examples=["activities.medical"],
    )
    before: Any = Field(description="The value before the event (null: none)")
    after: Any = Field(description="The value after it (null: none)")


class StoredEventOut(BaseModel):
    version: int
    event_type: str
    event_id: str
    source: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    changes: list[StateChange] = Field(
        description="What the event changed in the state (the day's figures aside)"
    )
    leaf_index: int | None = Field(description=_UNHASHED.format("Its place in the log's tree"))
    leaf: HashHex | None = Field(description=_UNHASHED.format("Its leaf hash"))
    chain: HashHex | None = Field(description=_UNHASHED.format("Its case's chain link"))


class AuditEvents(BaseModel):
    application_number: str
    as_of_version: int | None = None
    as_of: datetime | None = None
    events: list[StoredEventOut]
    state: dict[str, Any] | None = Field(
        description="The full status view after the last listed event (null before the first)"
    )


class ProofEvent(BaseModel):
    leaf_index: int
    notification_id: int
    case_version: int
    topic: str
    state: str = Field(description="base64 of the stored payload bytes, exactly")
    leaf: HashHex
    chain: HashHex
    fields: str = Field(description="Field digests, hex: name a changed field")
    inclusion: list[HashHex] = Field(description="The leaf's audit path, nearest first")


class ProofCase(BaseModel):
    application_number: str | None
    case_id: str
    uncovered_events: int = Field(
        description="Events stored after the checkpoint, not covered by it: left out"
    )
    events: list[ProofEvent]


class BundleConsistency(BaseModel):
    from_: int = Field(alias="from", description="The older tree size the proof starts from")
    proof: list[HashHex]


class ProofBundle(BaseModel):
    """A proof bundle (domain/integrity/bundle.py): `casetrack audit verify-bundle` checks
    it offline against the log's public key."""

    format: Literal["casetrack-proof-bundle/1"]
    checkpoint: str = Field(description="The latest signed checkpoint note (C2SP)")
    consistency: BundleConsistency | None = Field(
        default=None, description="Present when asked for with ?since=SIZE"
    )
    cases: list[ProofCase]


class CheckpointOut(BaseModel):
    size: int
    root: HashHex
    note: str = Field(description="The signed checkpoint note (C2SP tlog-checkpoint)")


class ConsistencyOut(BaseModel):
    from_: int = Field(alias="from")
    to: int
    proof: list[HashHex] = Field(description="RFC 6962 consistency proof, in the RFC's order")


class AuditLogEntry(BaseModel):
    id: int
    auditor: str
    action: str
    application_number: str | None
    parameters: dict[str, Any]
    status: int
    request_id: str
    at: datetime


class AuditLog(BaseModel):
    entries: list[AuditLogEntry]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    lag_events: dict[str, int]


# ---------------------------------------------------------------- notifications


class Me(BaseModel):
    login: str
    kind: Literal["client", "representative"]
    language: Lang
    notifications: bool = Field(
        description="Whether change notifications are emailed (docs/notifications.md)"
    )


class MeUpdate(_In):
    notifications: bool = Field(description="false: opt out of change emails; true: back in")


WebhookEvent = Literal["application.status_changed", "application.updated"]


class WebhookRequest(_In):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2000)] = Field(
        description="https only (http to loopback in development); no private addresses"
    )
    events: list[WebhookEvent] | None = Field(
        default=None, min_length=1, description="The event types to receive; default: all"
    )


class Webhook(BaseModel):
    id: int
    url: str
    events: list[WebhookEvent]
    created_at: datetime
    disabled: bool


class WebhookCreated(Webhook):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, whsec_...), shown this once only"
    )


class Webhooks(BaseModel):
    webhooks: list[Webhook]

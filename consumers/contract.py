"""Inbound event contract v1: pydantic models, the JSON Schema's source of truth.

``parse_event`` turns raw bytes into a RecordCaseEvent or raises a ContractError
subclass naming the field at fault. Error texts never echo input values:
identifiers from outside are hostile and may carry personal data.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain import application_number as numbers
from domain import catalogue as t
from domain.catalogue import Category, DecisionOutcome, Language
from domain.commands import RecordCaseEvent

# ---------------------------------------------------------------- errors


class ContractError(ValueError):
    """An inbound message that does not meet contract v1."""

    kind = "invalid"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidJson(ContractError):
    kind = "invalid_json"


class UnknownEventType(ContractError):
    kind = "unknown_type"


class UnsupportedSchemaVersion(ContractError):
    kind = "unsupported_schema_version"


class InvalidField(ContractError):
    kind = "invalid_field"


# ---------------------------------------------------------------- building blocks

# C0 controls (NUL among them, which PostgreSQL text refuses), DEL and C1 controls.
# Format characters (Unicode Cf, e.g. the zero-width non-joiner) stay allowed:
# some scripts need them in names.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control_characters(value: str) -> str:
    """Free text is the one kind of string whose format does not already exclude them;
    one stored in the log would break whatever reads it later, a view or a mail."""
    if CONTROL_CHARACTERS.search(value):
        raise PydanticCustomError("control_character", "must not contain control characters")
    return value


# Every other string of the contract has a pattern, an enumeration or the email
# format, none of which admits a control character (tests/unit/test_contract.py
# tries one in every string of every type).
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control_characters),
    Field(json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f-\x9f]+$"}),
]
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    """A time must have an instant in UTC that Python can hold: 0001-01-01T00:00+01:00 is
    before year 1 in UTC (converting it raised OverflowError deep in the writer, which
    stopped the whole batch), and no processing system means a time before 1900."""
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        instant = None
    if instant is None or not _EARLIEST <= instant < _LATEST:
        raise PydanticCustomError("time_out_of_range", "must be between 1900 and 9999 in UTC")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_in_range)]
DocumentCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$"),
]
ApplicationNumber = Annotated[str, StringConstraints(pattern=numbers.PATTERN.pattern)]
Uci = Annotated[
    str,
    StringConstraints(pattern=r"^([0-9]{8}|[0-9]{10})$"),
    Field(description="Unique client identifier: 8 or 10 digits, no separators"),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Person(_Model):
    uci: Uci
    given_name: Text
    family_name: Text
    date_of_birth: date
    email: EmailStr | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _in_the_past(cls, value: date) -> date:
        if value >= date.today() or value.year < 1900:
            raise ValueError("date_of_birth must be a past date after 1900")
        return value


class RepresentativeModel(_Model):
    name: Text
    email: EmailStr
    membership_id: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9-]{3,20}$")] | None = None


class Empty(_Model):
    """No payload fields: send ``{}``."""


class ApplicationReceived(_Model):
    category: Category
    received_on: date
    principal_applicant: Person
    sponsor: Person
    representative: RepresentativeModel | None = None
    preferred_language: Language = "en"


class ApplicationAcknowledged(_Model):
    acknowledged_on: date


class Requested(_Model):
    due_on: date


class Completed(_Model):
    completed_on: date | None = None


class DocumentsRequested(_Model):
    documents: list[DocumentCode] = Field(min_length=1, max_length=20)
    due_on: date


class DocumentsReceived(_Model):
    documents: list[DocumentCode] = Field(min_length=1, max_length=20)


class InterviewScheduled(_Model):
    scheduled_for: Moment


class DecisionMade(_Model):
    outcome: DecisionOutcome
    decided_on: date | None = None


class CoprIssued(_Model):
    issued_on: date | None = None


class PassportRequested(_Model):
    due_on: date | None = None


class CorrespondenceSent(_Model):
    subject: Text


PAYLOADS: dict[str, type[_Model]] = {
    t.RECEIVED: ApplicationReceived,
    t.ACKNOWLEDGED: ApplicationAcknowledged,
    "biometrics.requested": Requested,
    "medical.requested": Requested,
    "biometrics.completed": Completed,
    "background_check.completed": Completed,
    "medical.passed": Completed,
    "medical.failed": Completed,
    t.DOCUMENTS_REQUESTED: DocumentsRequested,
    t.DOCUMENTS_RECEIVED: DocumentsReceived,
    t.INTERVIEW_SCHEDULED: InterviewScheduled,
    t.DECISION_MADE: DecisionMade,
    t.COPR_ISSUED: CoprIssued,
    t.PASSPORT_REQUESTED: PassportRequested,
    t.CORRESPONDENCE_SENT: CorrespondenceSent,
}


class Envelope(_Model):
    event_id: UUID = Field(description="Assigned by the producer; the idempotency key")
    schema_version: Literal[1]
    application_number: ApplicationNumber = Field(
        description="The case id: one uppercase letter and nine digits, e.g. F000123456"
    )
    occurred_at: Moment = Field(
        description="RFC 3339 timestamp with offset: when it happened in the processing system"
    )
    source: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = Field(
        description="The publishing system's name"
    )

    @field_validator("schema_version", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        if isinstance(value, bool):  # JSON true would otherwise equal 1
            raise ValueError("must be the number 1")
        return value


def _event_model(event_type: str) -> type[Envelope]:
    name = "".join(part.title() for part in re.split(r"[._]", event_type)) + "Event"
    tag: Any = Literal[event_type]  # built at run time, one per type: a value to mypy
    return create_model(
        name,
        __base__=Envelope,
        type=(tag, ...),
        payload=(PAYLOADS.get(event_type, Empty), ...),
    )


EVENT_MODELS: dict[str, type[Envelope]] = {name: _event_model(name) for name in t.EVENT_TYPES}
# The union of every event model, built at run time: a value to mypy, not a type alias.
CaseEvent: Any = Annotated[
    Union[tuple(EVENT_MODELS.values())],  # noqa: UP007 (X | Y cannot unpack a tuple)
    Field(discriminator="type"),
]
CASE_EVENT: TypeAdapter[Any] = TypeAdapter(CaseEvent)


def json_schema() -> dict[str, Any]:
    schema = CASE_EVENT.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://casetrack.example/schemas/case-event.v1.json"
    schema["title"] = "casetrack inbound case event, schema_version 1"
    return schema


# ---------------------------------------------------------------- parsing


def parse_event(raw: bytes | str) -> RecordCaseEvent:
    """Validate one message; raise a ContractError subclass on any problem.

    Validation is strict JSON mode: timestamps and dates must be RFC 3339
    strings, numbers are not coerced from strings or booleans.
    """
    try:
        event = CASE_EVENT.validate_json(raw)
    except ValidationError as e:
        raise _contract_error(e) from None
    return RecordCaseEvent(
        event_id=event.event_id,
        type=event.type,
        application_number=event.application_number,
        occurred_at=event.occurred_at,
        source=event.source,
        payload=_plain_payload(event.payload),
    )


def _contract_error(error: ValidationError) -> ContractError:
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    kind, loc = first["type"], first["loc"]
    if kind == "json_invalid":
        return InvalidJson("not valid JSON")
    if kind in ("model_attributes_type", "model_type", "dict_type") and not loc:
        return InvalidJson("an event must be a JSON object")
    if kind == "union_tag_not_found":
        return InvalidField("type: field required", "type")
    if kind == "union_tag_invalid":
        return UnknownEventType("type: not an event type of schema version 1", "type")
    if loc[1:] == ("schema_version",):
        if kind == "missing":
            return InvalidField("schema_version: field required", "schema_version")
        return UnsupportedSchemaVersion(
            "schema_version: only version 1 is supported", "schema_version"
        )
    return _field_error(error)


def _field_error(error: ValidationError) -> InvalidField:
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    loc = first["loc"][1:]  # drop the discriminator tag
    path = ".".join(_safe_part(part) for part in loc) or "event"
    message = first["msg"]
    if first["type"] == "missing":
        message = "field required"
    elif first["type"] == "extra_forbidden":
        message = "unexpected field"
    elif loc and loc[-1] == "email":
        message = "not a valid email address"  # the validator's text may quote the address
    elif first["type"].startswith("uuid"):
        message = "must be a UUID"  # pydantic's text quotes the offending character
    return InvalidField(f"{path}: {message}", path)


def _safe_part(part: int | str) -> str:
    """A path part fit for logs: the contract's own field names; any other key (an
    unexpected field's name could be anything, a person's name or a UCI) is masked."""
    if isinstance(part, int):
        return str(part)
    return part if part in _CONTRACT_FIELDS else "<field>"


def _property_names(schema: Any) -> set[str]:
    """Every property name declared anywhere in a JSON Schema."""
    if isinstance(schema, list):
        return set().union(*map(_property_names, schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    names = (
        set(schema.get("properties", {})) if isinstance(schema.get("properties"), dict) else set()
    )
    return names.union(*map(_property_names, schema.values()))


_CONTRACT_FIELDS = frozenset(_property_names(CASE_EVENT.json_schema()))


def _plain_payload(payload: BaseModel) -> dict[str, Any]:
    """Payload as plain values for the domain: dates stay dates, models become dicts."""
    return payload.model_dump(mode="python", exclude_none=False)

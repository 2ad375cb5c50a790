"""consumers.contract.parse_event: contract v1 in, RecordCaseEvent or a ContractError out."""

from __future__ import annotations

import copy
import json
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from builders import (
    APPLICATION_NUMBER,
    DOMAIN_PAYLOADS,
    JSON_PAYLOADS,
    OCCURRED_AT,
    SOURCE,
    envelope,
    raw,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from consumers.contract import (
    ContractError,
    InvalidField,
    InvalidJson,
    UnknownEventType,
    UnsupportedSchemaVersion,
    parse_event,
)
from domain import catalogue as t
from domain.commands import RecordCaseEvent


def parse_error(message: dict[str, Any] | str | bytes) -> ContractError:
    """The ContractError parse_event raises for ``message`` (a dict is JSON-encoded)."""
    data = raw(message) if isinstance(message, dict) else message
    with pytest.raises(ContractError) as raised:
        parse_event(data)
    return raised.value


def received(**person_fields: Any) -> dict[str, Any]:
    """An application.received message whose principal applicant has ``person_fields``."""
    payload = copy.deepcopy(JSON_PAYLOADS[t.RECEIVED])
    payload["principal_applicant"].update(person_fields)
    return envelope(t.RECEIVED, payload)


def without(message: dict[str, Any], *path: str) -> dict[str, Any]:
    """``message`` with the field at ``path`` removed."""
    message = copy.deepcopy(message)
    parent = message
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return message


# ---------------------------------------------------------------- valid events


@pytest.mark.parametrize("event_type", t.EVENT_TYPES)
def test_a_minimal_valid_event_of_every_type_parses(event_type: str) -> None:
    message = envelope(event_type)

    command = parse_event(raw(message))

    assert isinstance(command, RecordCaseEvent)
    assert command.type == event_type
    assert command.event_id == uuid.UUID(message["event_id"])
    assert command.application_number == APPLICATION_NUMBER
    assert command.occurred_at == OCCURRED_AT and command.occurred_at.tzinfo is not None
    assert command.source == SOURCE
    # the payload in the domain's shape: dates are dates, optional fields present
    assert dict(command.payload) == DOMAIN_PAYLOADS[event_type]


def test_bytes_parse_like_text() -> None:
    message = raw(envelope(t.ACKNOWLEDGED))

    assert parse_event(message.encode()).payload == parse_event(message).payload


def test_optional_fields_parse_to_plain_values() -> None:
    representative = {"name": "Cabinet Roy", "email": "info@roy.example", "membership_id": "R-123"}
    payload = copy.deepcopy(JSON_PAYLOADS[t.RECEIVED])
    payload["principal_applicant"]["email"] = "marie.lambert@example.com"
    payload.update(representative=representative, preferred_language="fr")

    command = parse_event(raw(envelope(t.RECEIVED, payload)))

    assert command.payload["representative"] == representative
    assert command.payload["principal_applicant"]["email"] == "marie.lambert@example.com"
    assert command.payload["principal_applicant"]["date_of_birth"] == date(1990, 6, 1)
    assert command.payload["preferred_language"] == "fr"


def test_preferred_language_defaults_to_english() -> None:
    message = without(envelope(t.RECEIVED), "payload", "preferred_language")

    assert parse_event(raw(message)).payload["preferred_language"] == "en"


@pytest.mark.parametrize(
    ("event_type", "payload", "field", "value"),
    [
        (t.DECISION_MADE, {"outcome": "refused", "decided_on": "2024-06-01"}, "decided_on",
         date(2024, 6, 1)),
        (t.COPR_ISSUED, {"issued_on": "2024-07-01"}, "issued_on", date(2024, 7, 1)),
        (t.PASSPORT_REQUESTED, {"due_on": "2024-07-15"}, "due_on", date(2024, 7, 15)),
        ("medical.passed", {"completed_on": "2024-04-01"}, "completed_on", date(2024, 4, 1)),
    ],
)
def test_optional_dates_parse(event_type: str, payload: dict, field: str, value: date) -> None:
    assert parse_event(raw(envelope(event_type, payload))).payload[field] == value


# ---------------------------------------------------------------- not an event at all


@pytest.mark.parametrize(
    "data",
    ["", "{", "not json", "{'single': 'quotes'}", '{"a": 1,}', b"\xff\xfe\x00", b"{\x80}"],
    ids=["empty", "unclosed", "text", "single-quotes", "trailing-comma", "utf16-bom", "bad-utf8"],
)
def test_invalid_json_is_invalid_json(data: str | bytes) -> None:
    error = parse_error(data)

    assert type(error) is InvalidJson
    assert error.kind == "invalid_json"
    assert str(error).startswith("not valid JSON")


@pytest.mark.parametrize("data", ["[]", "[{}]", "1", '"an event"', "null", "true", "NaN"])
def test_json_that_is_not_an_object_is_invalid_json(data: str) -> None:
    error = parse_error(data)

    assert type(error) is InvalidJson
    assert str(error) == "an event must be a JSON object"


# ---------------------------------------------------------------- type and version


@pytest.mark.parametrize(
    "event_type",
    ["application.approved", "APPLICATION.RECEIVED", "", "medical.completed", 7, None, ["x"]],
)
def test_an_unknown_type_is_unknown_event_type(event_type: Any) -> None:
    error = parse_error(envelope(t.ACKNOWLEDGED, type=event_type))

    assert type(error) is UnknownEventType
    assert error.field == "type"
    assert error.kind == "unknown_type"


def test_a_missing_type_is_an_invalid_field() -> None:
    error = parse_error(without(envelope(t.ACKNOWLEDGED), "type"))

    assert type(error) is InvalidField
    assert (error.field, str(error)) == ("type", "type: field required")


@pytest.mark.parametrize(
    "version", [2, 0, -1, True, False, "1", "v1", [1], {"major": 1}],
    ids=["2", "0", "-1", "true", "false", "string-1", "v1", "list", "object"],
)
def test_a_schema_version_other_than_1_is_unsupported(version: Any) -> None:
    error = parse_error(envelope(t.ACKNOWLEDGED, schema_version=version))

    assert type(error) is UnsupportedSchemaVersion
    assert error.field == "schema_version"
    assert str(error) == "schema_version: only version 1 is supported"


def test_a_missing_schema_version_is_an_invalid_field() -> None:
    error = parse_error(without(envelope(t.ACKNOWLEDGED), "schema_version"))

    assert type(error) is InvalidField
    assert (error.field, str(error)) == ("schema_version", "schema_version: field required")


def test_a_null_schema_version_is_refused_and_named() -> None:
    # either "field required" or "only version 1": both name the field
    error = parse_error(envelope(t.ACKNOWLEDGED, schema_version=None))

    assert isinstance(error, InvalidField | UnsupportedSchemaVersion)
    assert error.field == "schema_version"


# ---------------------------------------------------------------- envelope fields


@pytest.mark.parametrize(
    "number",
    [
        "f000123456",
        "F00012345",
        "F0001234567",
        "0000123456",
        "FF00123456",
        "F000 123456",
        " F000123456",
        "F000123456 ",
        "F000123456\n",
        "F-000123456",
        "\uff26000123456",
        "F' OR '1'='1",
        "F000123456'; DROP TABLE cases; --",
        "",
        1234567890,
        None,
    ],
    ids=[
        "lowercase", "8-digits", "10-digits", "no-letter", "two-letters", "inner-space",
        "leading-space", "trailing-space", "newline", "dash", "fullwidth-letter",
        "sql-or", "sql-drop", "empty", "number", "null",
    ],
)
def test_a_bad_application_number_is_an_invalid_field(number: Any) -> None:
    error = parse_error(envelope(t.ACKNOWLEDGED, application_number=number))

    assert type(error) is InvalidField
    assert error.field == "application_number"
    assert str(error).startswith("application_number: ")
    if isinstance(number, str) and len(number) > 3:
        assert number not in str(error)


@pytest.mark.parametrize(
    "occurred_at",
    ["2024-03-01T14:30:00", "2024-03-01T14:30", "2024-03-01", "yesterday", "", None],
    ids=["no-offset", "no-seconds-no-offset", "date-only", "text", "empty", "null"],
)
def test_occurred_at_needs_an_offset(occurred_at: Any) -> None:
    error = parse_error(envelope(t.ACKNOWLEDGED, occurred_at=occurred_at))

    assert type(error) is InvalidField
    assert error.field == "occurred_at"


@pytest.mark.parametrize("offset", ["Z", "+00:00", "-05:00", "+05:30"])
def test_occurred_at_with_any_offset_parses(offset: str) -> None:
    command = parse_event(raw(envelope(t.ACKNOWLEDGED, occurred_at=f"2024-03-01T14:30:00{offset}")))

    assert command.occurred_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", "not-a-uuid"),
        ("event_id", 42),
        ("source", "gcms production"),
        ("source", ""),
        ("source", "x" * 65),
    ],
)
def test_other_bad_envelope_fields_are_named(field: str, value: Any) -> None:
    error = parse_error(envelope(t.ACKNOWLEDGED, **{field: value}))

    assert type(error) is InvalidField
    assert error.field == field


@pytest.mark.parametrize("field", ["event_id", "application_number", "occurred_at", "source",
                                   "payload"])
def test_a_missing_envelope_field_is_named(field: str) -> None:
    error = parse_error(without(envelope(t.ACKNOWLEDGED), field))

    assert type(error) is InvalidField
    assert (error.field, str(error)) == (field, f"{field}: field required")


def test_an_extra_envelope_field_is_unexpected_and_its_name_not_echoed() -> None:
    error = parse_error(envelope(t.ACKNOWLEDGED, priority="high"))

    assert (error.field, str(error)) == ("<field>", "<field>: unexpected field")


def test_a_contract_field_in_the_wrong_place_is_named() -> None:
    payload = {**JSON_PAYLOADS[t.ACKNOWLEDGED], "due_on": "2024-05-01"}

    error = parse_error(envelope(t.ACKNOWLEDGED, payload))

    assert (error.field, str(error)) == ("payload.due_on", "payload.due_on: unexpected field")


# ---------------------------------------------------------------- payload fields


@pytest.mark.parametrize(
    ("event_type", "path"),
    [
        (t.ACKNOWLEDGED, ("acknowledged_on",)),
        ("biometrics.requested", ("due_on",)),
        ("medical.requested", ("due_on",)),
        (t.DOCUMENTS_REQUESTED, ("due_on",)),
        (t.DOCUMENTS_REQUESTED, ("documents",)),
        (t.DOCUMENTS_RECEIVED, ("documents",)),
        (t.INTERVIEW_SCHEDULED, ("scheduled_for",)),
        (t.DECISION_MADE, ("outcome",)),
        (t.CORRESPONDENCE_SENT, ("subject",)),
        (t.RECEIVED, ("category",)),
        (t.RECEIVED, ("received_on",)),
        (t.RECEIVED, ("principal_applicant",)),
        (t.RECEIVED, ("sponsor",)),
        (t.RECEIVED, ("principal_applicant", "uci")),
        (t.RECEIVED, ("principal_applicant", "given_name")),
        (t.RECEIVED, ("sponsor", "family_name")),
        (t.RECEIVED, ("sponsor", "date_of_birth")),
    ],
    ids=lambda value: ".".join(value) if isinstance(value, tuple) else value,
)
def test_a_missing_payload_field_is_named(event_type: str, path: tuple[str, ...]) -> None:
    error = parse_error(without(envelope(event_type), "payload", *path))

    name = ".".join(("payload", *path))
    assert type(error) is InvalidField
    assert (error.field, str(error)) == (name, f"{name}: field required")


@pytest.mark.parametrize(
    "event_type", [t.ACKNOWLEDGED, "eligibility.started", "biometrics.completed",
                   t.INTERVIEW_COMPLETED, t.WITHDRAWN, t.DECISION_MADE, t.RECEIVED],
)
def test_an_extra_payload_field_is_unexpected(event_type: str) -> None:
    payload = {**JSON_PAYLOADS[event_type], "note": "call back"}

    error = parse_error(envelope(event_type, payload))

    assert type(error) is InvalidField
    assert (error.field, str(error)) == ("payload.<field>", "payload.<field>: unexpected field")


def test_an_extra_person_field_is_unexpected() -> None:
    error = parse_error(received(middle_name="Claire"))

    assert error.field == "payload.principal_applicant.<field>"
    assert str(error).endswith(": unexpected field")


@pytest.mark.parametrize("name", ["Marie Lambert", "marie_lambert", "uci_11223344"])
def test_an_extra_field_name_that_could_be_personal_data_is_not_echoed(name: str) -> None:
    payload = {**JSON_PAYLOADS["eligibility.started"], name: "x"}

    error = parse_error(envelope("eligibility.started", payload))

    assert error.field == "payload.<field>"
    assert name not in str(error) and "Marie" not in str(error)


@pytest.mark.parametrize("payload", ["", [], None, 1], ids=["string", "list", "null", "number"])
def test_a_payload_that_is_not_an_object_is_named(payload: Any) -> None:
    message = envelope("eligibility.started")
    message["payload"] = payload

    assert parse_error(message).field == "payload"


@pytest.mark.parametrize(
    "uci",
    ["1234567", "123456789", "12345678901", "1234-5678", "12 345 678", " 12345678", "ABCDEFGH",
     "", 12345678, None],
    ids=["7-digits", "9-digits", "11-digits", "dash", "spaces", "leading-space", "letters",
         "empty", "number", "null"],
)
@pytest.mark.parametrize("role", ["principal_applicant", "sponsor"])
def test_a_bad_uci_is_named(role: str, uci: Any) -> None:
    payload = copy.deepcopy(JSON_PAYLOADS[t.RECEIVED])
    payload[role]["uci"] = uci

    error = parse_error(envelope(t.RECEIVED, payload))

    assert type(error) is InvalidField
    assert error.field == f"payload.{role}.uci"


@pytest.mark.parametrize("uci", ["12345678", "1234567890"])
def test_a_uci_has_8_or_10_digits(uci: str) -> None:
    command = parse_event(raw(received(uci=uci)))

    assert command.payload["principal_applicant"]["uci"] == uci


@pytest.mark.parametrize(
    "date_of_birth",
    [date.today() + timedelta(days=1), date.today(), date(2999, 1, 1), date(1899, 12, 31)],
    ids=["tomorrow", "today", "far-future", "before-1900"],
)
def test_date_of_birth_must_be_a_past_date_after_1900(date_of_birth: date) -> None:
    error = parse_error(received(date_of_birth=date_of_birth.isoformat()))

    assert type(error) is InvalidField
    assert error.field == "payload.principal_applicant.date_of_birth"
    assert "past date" in str(error)


def test_date_of_birth_yesterday_and_1900_are_fine() -> None:
    for day in (date.today() - timedelta(days=1), date(1900, 1, 1)):
        parse_event(raw(received(date_of_birth=day.isoformat())))


@pytest.mark.parametrize(
    ("event_type", "payload", "field"),
    [
        (t.RECEIVED, {"category": "parent"}, "payload.category"),
        (t.RECEIVED, {"preferred_language": "de"}, "payload.preferred_language"),
        (t.RECEIVED, {"received_on": "15/01/2024"}, "payload.received_on"),
        (t.RECEIVED, {"representative": {"name": "Roy", "email": "not-an-email"}},
         "payload.representative.email"),
        (t.RECEIVED, {"representative": {"name": "Roy", "email": "r@roy.example",
                                         "membership_id": "r1"}},
         "payload.representative.membership_id"),
        (t.DECISION_MADE, {"outcome": "withdrawn"}, "payload.outcome"),
        (t.DOCUMENTS_REQUESTED, {"documents": []}, "payload.documents"),
        (t.DOCUMENTS_REQUESTED, {"documents": [f"doc_{i}" for i in range(21)]},
         "payload.documents"),
        (t.DOCUMENTS_REQUESTED, {"documents": ["Police Certificate"]}, "payload.documents.0"),
        (t.DOCUMENTS_RECEIVED, {"documents": ["ok_doc", "x"]}, "payload.documents.1"),
        (t.INTERVIEW_SCHEDULED, {"scheduled_for": "2024-05-06T09:00:00"},
         "payload.scheduled_for"),
        (t.CORRESPONDENCE_SENT, {"subject": "   "}, "payload.subject"),
        (t.CORRESPONDENCE_SENT, {"subject": "x" * 201}, "payload.subject"),
        ("biometrics.requested", {"due_on": None}, "payload.due_on"),
    ],
    ids=lambda value: value if isinstance(value, str) and value.startswith("payload") else None,
)
def test_other_bad_payload_fields_are_named(event_type: str, payload: dict, field: str) -> None:
    error = parse_error(envelope(event_type, {**JSON_PAYLOADS[event_type], **payload}))

    assert type(error) is InvalidField
    assert error.field == field
    assert str(error).startswith(f"{field}: ")


def test_an_invalid_email_is_named_without_echoing_it() -> None:
    error = parse_error(received(email="marie.lambert.example.com"))

    assert error.field == "payload.principal_applicant.email"
    assert "marie" not in str(error)


# ---------------------------------------------------------------- messages are safe

BAD_MESSAGES: list[Any] = [
    "{",
    b"\xff",
    "[]",
    without(envelope(t.ACKNOWLEDGED), "type"),
    envelope(t.ACKNOWLEDGED, type="nope"),
    envelope(t.ACKNOWLEDGED, schema_version=2),
    without(envelope(t.ACKNOWLEDGED), "schema_version"),
    envelope(t.ACKNOWLEDGED, application_number="x"),
    envelope(t.ACKNOWLEDGED, occurred_at="2024-03-01T00:00:00"),
    envelope(t.ACKNOWLEDGED, event_id="zzz"),
    envelope(t.ACKNOWLEDGED, {}),
    envelope(t.ACKNOWLEDGED, {"acknowledged_on": "soon"}),
    envelope(t.ACKNOWLEDGED, {"acknowledged_on": "2024-01-01", "x": 1}),
    received(uci="1"),
    received(email="no-at-sign"),
    received(date_of_birth="2999-01-01"),
    received(given_name=""),
]


@pytest.mark.parametrize("message", BAD_MESSAGES)
def test_no_error_message_carries_traceback_text(message: Any) -> None:
    error = parse_error(message)
    text = str(error)

    assert "Traceback" not in text
    assert 'File "' not in text
    assert "\n" not in text
    assert "errors.pydantic.dev" not in text  # no documentation links either
    assert "validation error" not in text  # not pydantic's multi-line summary
    # raised from None: no chained exception (with its input) travels with it
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert error.kind in {"invalid_json", "unknown_type", "unsupported_schema_version",
                          "invalid_field"}


# Personal data placed into invalid events must never appear in str(error).


@dataclass(frozen=True)
class PersonalData:
    given_name: str
    family_name: str
    email: str
    uci: str

    def values(self) -> tuple[str, ...]:
        return (self.given_name, self.family_name, self.email, self.uci)


_word = st.text(st.characters(categories=["L"]), min_size=2, max_size=12)
names = st.lists(_word, min_size=1, max_size=3).map(" ".join).filter(lambda n: len(n) >= 4)
ucis = st.from_regex(r"[0-9]{8}|[0-9]{10}", fullmatch=True)
personal_data = st.builds(PersonalData, names, names, st.emails(), ucis)


def _on_received(pii: PersonalData, **person_fields: Any) -> dict[str, Any]:
    """A received event carrying ``pii`` (valid) in the principal applicant."""
    fields = {"given_name": pii.given_name, "family_name": pii.family_name,
              "email": pii.email, "uci": pii.uci}
    return received(**{**fields, **person_fields})


def _long(text: str) -> str:
    return " ".join([text] * (201 // len(text) + 1))


# Each placement builds an invalid event from the personal data.
PLACEMENTS = {
    "name-as-application-number": lambda p: _on_received(p) | {"application_number": p.given_name},
    "uci-as-application-number": lambda p: _on_received(p) | {"application_number": p.uci},
    "name-as-event-id": lambda p: _on_received(p) | {"event_id": p.family_name},
    "email-as-event-id": lambda p: _on_received(p) | {"event_id": p.email},
    "name-as-occurred-at": lambda p: _on_received(p) | {"occurred_at": p.given_name},
    "names-as-source": lambda p: _on_received(p) | {"source": f"{p.given_name} {p.family_name}"},
    "name-as-type": lambda p: _on_received(p) | {"type": p.family_name},
    "email-as-type": lambda p: _on_received(p) | {"type": p.email},
    "name-as-schema-version": lambda p: _on_received(p) | {"schema_version": p.given_name},
    "email-as-uci": lambda p: _on_received(p, uci=p.email),
    "uci-too-long": lambda p: _on_received(p, uci=p.uci + "0"),
    "uci-with-name": lambda p: _on_received(p, uci=f"{p.uci} {p.family_name}"),
    "name-as-date-of-birth": lambda p: _on_received(p, date_of_birth=p.given_name),
    "name-too-long": lambda p: _on_received(p, given_name=_long(p.given_name)),
    "email-without-at": lambda p: _on_received(p, email=p.email.replace("@", " at ")),
    "email-in-brackets": lambda p: _on_received(p, email="<" + p.email),
    "email-double-dot": lambda p: _on_received(p, email=p.email + ".."),
    "email-as-name-list": lambda p: _on_received(p, given_name=[p.email, p.given_name]),
    "extra-person-field": lambda p: _on_received(p, nickname=p.given_name, note=p.email),
    "name-as-category": lambda p: _on_received(p) | {
        "payload": {**_on_received(p)["payload"], "category": p.family_name}},
    "name-as-membership-id": lambda p: _on_received(p) | {
        "payload": {**_on_received(p)["payload"], "representative": {
            "name": p.given_name, "email": p.email,
            "membership_id": f"{p.given_name} {p.family_name}"}}},
    "name-as-outcome": lambda p: envelope(t.DECISION_MADE, {"outcome": p.given_name}),
    "name-as-document": lambda p: envelope(
        t.DOCUMENTS_REQUESTED,
        {"documents": [f"{p.family_name} {p.given_name}"], "due_on": "2024-01-01"},
    ),
    "long-subject": lambda p: envelope(t.CORRESPONDENCE_SENT, {"subject": _long(p.email)}),
    "truncated-json": lambda p: raw(_on_received(p))[:-3],
    "json-array": lambda p: json.dumps([p.given_name, p.email, p.uci]),
    "single-quoted-key": lambda p: raw(_on_received(p)).replace('"type"', "'type'"),
}


def _placeholder(pii: PersonalData) -> PersonalData:
    """Neutral data of the same shape, to tell generic message text from an echo."""
    return PersonalData(
        given_name="Q" * len(pii.given_name),
        family_name="Z" * len(pii.family_name),
        email="q@example.com",
        uci="0" * len(pii.uci),
    )


def _error_text(message: Any) -> tuple[str, str | None]:
    error = parse_error(message)
    return str(error), error.field


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pii=personal_data, placement=st.sampled_from(sorted(PLACEMENTS)))
def test_no_error_message_contains_the_inputs_personal_data(
    pii: PersonalData, placement: str
) -> None:
    build = PLACEMENTS[placement]

    text, field = _error_text(build(pii))

    generic, _ = _error_text(build(_placeholder(pii)))
    for value in pii.values():
        # a value that is also in the placeholder's message is generic text
        # (a name like "field" or "should"), not an echo
        assume(value not in generic)
        assert value not in text, (placement, text)
        assert field is None or value not in field, (placement, field)


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_every_placement_is_an_invalid_event(placement: str) -> None:
    pii = PersonalData("Marie Claire", "Lambert", "marie.lambert@example.com", "12345678")

    text, _ = _error_text(PLACEMENTS[placement](pii))

    assert "Marie" not in text and "Lambert" not in text and "marie" not in text


# ---------------------------------------------------------------- hostile edge cases


@pytest.mark.parametrize(
    ("email", "secret"),
    [
        ("marie@marie\u00b7lambert.ca", "lambert"),
        ("marie@lambert\u30fb.ca", "lambert"),
        ("marie@xn--marielambert-9zz.ca", "marielambe"),
        ("marie.lambert@@example.com", "@'"),
        ("marie,lambert@example.com", "','"),
    ],
    ids=["middle-dot", "katakana-dot", "punycode", "double-at", "comma"],
)
def test_an_invalid_email_is_not_quoted_even_in_part(email: str, secret: str) -> None:
    # email-validator's own messages quote the bad characters or the whole
    # IDNA label ("... of 'marielambe\u09f9rt' not allowed"): they must not pass.
    error = parse_error(received(email=email))

    assert error.field == "payload.principal_applicant.email"
    assert secret not in str(error)


def test_deeply_nested_json_is_invalid_json_not_a_recursion_error() -> None:
    error = parse_error("[" * 100_000)

    assert type(error) is InvalidJson


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(envelope(t.ACKNOWLEDGED, occurred_at=1709303400), id="occurred_at"),
        pytest.param(envelope(t.ACKNOWLEDGED, {"acknowledged_on": 1709251200}),
                     id="acknowledged_on"),
        pytest.param(received(date_of_birth=0), id="date_of_birth"),
        pytest.param(envelope(t.ACKNOWLEDGED, event_id=12345), id="event_id-number"),
    ],
)
def test_numbers_are_not_taken_for_dates_timestamps_or_strings(message: dict) -> None:
    # the published JSON Schema wants strings: no lax coercion from numbers
    assert isinstance(parse_error(message), InvalidField | UnsupportedSchemaVersion)


# ---------------------------------------------------------------- regressions


@pytest.mark.parametrize("uci", ["\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",
                                 "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18"],
                         ids=["arabic-indic", "fullwidth"])
def test_uci_refuses_non_ascii_digits(uci: str) -> None:
    error = parse_error(received(uci=uci))

    assert error.field == "payload.principal_applicant.uci"


def test_a_bad_event_id_is_named_without_quoting_it() -> None:
    from tests.unit.builders import envelope, raw

    message = envelope(t.ACKNOWLEDGED, event_id="Jean-Dupont-not-a-uuid")
    with pytest.raises(InvalidField) as caught:
        parse_event(raw(message))
    assert str(caught.value) == "event_id: must be a UUID"


# Every string of a full message of every type, at any depth: (message, path to it).
def _full(event_type: str) -> dict[str, Any]:
    payload = copy.deepcopy(JSON_PAYLOADS[event_type])
    if event_type == t.RECEIVED:
        payload["principal_applicant"]["email"] = "marie@example.com"
        payload["representative"] = {"name": "Julie Lavoie", "email": "jl@example.com",
                                     "membership_id": "R512347"}
    return envelope(event_type, payload)


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, list) else ()
    return [found for key, item in items for found in _string_paths(item, (*path, key))]


STRING_FIELDS = sorted({(event_type, path) for event_type in t.EVENT_TYPES
                        for path in _string_paths(_full(event_type)) if path != ("type",)})
CONTROL_CHARACTERS = ["\x00", "\x01", "\t", "\n", "\x1b", "\x1f", "\x7f", "\x85", "\x9f"]


@pytest.mark.parametrize(("event_type", "path"), STRING_FIELDS,
                         ids=[f"{e}:{'.'.join(map(str, p))}" for e, p in STRING_FIELDS])
@pytest.mark.parametrize("control", CONTROL_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_control_character_in_any_string_is_refused_and_named(
    event_type: str, path: tuple[Any, ...], control: str
) -> None:
    message = _full(event_type)
    parent = message
    for key in path[:-1]:
        parent = parent[key]
    value = parent[path[-1]]
    parent[path[-1]] = value[: len(value) // 2] + control + value[len(value) // 2 :]
    field = ".".join(map(str, path))

    error = parse_error(message)

    assert type(error) is InvalidField
    assert error.field == field
    if path[-1] in FREE_TEXT:  # other strings have a format that already excludes them
        assert str(error) == f"{field}: must not contain control characters"


FREE_TEXT = {"given_name", "family_name", "name", "subject"}


def test_every_free_text_field_is_among_the_strings_tried() -> None:
    assert {path[-1] for _, path in STRING_FIELDS} >= FREE_TEXT


@pytest.mark.parametrize("text", ["  Lambert\t", "\nLambert\r\n"], ids=["tab", "newlines"])
def test_whitespace_controls_at_the_edges_are_trimmed_like_any_whitespace(text: str) -> None:
    event = parse_event(raw(received(family_name=text)))

    assert event.payload["principal_applicant"]["family_name"] == "Lambert"


PERSIAN_WITH_ZWNJ = "\u062e\u0627\u0646\u0645\u200c\u0647\u0627"  # U+200C: format, not control


@pytest.mark.parametrize("text", ["Zoë Ångström", "Nguyễn", PERSIAN_WITH_ZWNJ, "O'Brien-Smith"])
def test_names_in_any_script_still_parse(text: str) -> None:
    event = parse_event(raw(received(family_name=text)))

    assert event.payload["principal_applicant"]["family_name"] == text


def _controls(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) == "Cc"]


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40))
def test_no_free_text_with_a_control_character_gets_in_and_none_without_is_refused(
    text: str
) -> None:
    assume(text.strip())  # blank text is refused for being blank
    try:
        stored = parse_event(raw(received(family_name=text))).payload["principal_applicant"][
            "family_name"]
    except InvalidField as e:
        assert e.field == "payload.principal_applicant.family_name"
        stored = None

    if stored is not None:
        assert not _controls(stored)
    if not _controls(text):
        assert stored == text.strip()
    if any(not c.isspace() for c in _controls(text)):  # not even trimmable
        assert stored is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
        ("occurred_at", "9999-12-31T23:00:00-05:00"),  # after year 9999 in UTC
        ("occurred_at", "1899-12-31T23:59:59Z"),
        ("scheduled_for", "0001-01-01T00:30:00+02:00"),
    ],
)
def test_a_time_outside_1900_to_9999_utc_is_refused_and_named(field: str, value: str) -> None:
    """Such a time has no UTC instant in Python (an OverflowError deep in the writer, which
    stopped the whole batch) or is no time a processing system meant."""
    if field == "occurred_at":
        message = received()
        message["occurred_at"] = value
    else:
        message = envelope(t.INTERVIEW_SCHEDULED, {"scheduled_for": value})
    error = parse_error(message)

    assert type(error) is InvalidField
    assert error.field == (field if field == "occurred_at" else f"payload.{field}")
    assert "between 1900 and 9999" in str(error)

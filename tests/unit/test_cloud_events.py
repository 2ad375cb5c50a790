"""CloudEvents in (consumers/cloud_events.py): structured and Kafka binary mode, produced by
the CloudEvents SDK, give the command the v1 envelope gives; bad ones the same typed
errors, named after the attribute at fault."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from builders import JSON_PAYLOADS, envelope, raw

from consumers.cloud_events import ID_NAMESPACE, event_id_for, system_name
from consumers.contract import ContractError
from consumers.file_ingest import parse_line
from domain import catalogue as t
from domain.commands import RecordCaseEvent
from tests.cloud_event_producer import binary, cloud_event, headers, structured

NUMBER = "F000123456"


def v1(message: dict[str, Any]) -> RecordCaseEvent:
    parsed = parse_line(raw(message).encode())
    assert isinstance(parsed, RecordCaseEvent), parsed
    return parsed


def both_modes(event: Any) -> list[RecordCaseEvent | ContractError]:
    """What parsing makes of ``event`` sent in structured mode (with its content-type
    header, and as a bare line of a file) and in binary mode."""
    s, b = structured(event), binary(event)
    return [
        parse_line(s.value, headers(s)),
        parse_line(s.value),
        parse_line(b.value, headers(b)),
    ]


def error_in(parsed: RecordCaseEvent | ContractError) -> ContractError:
    assert isinstance(parsed, ContractError), parsed
    return parsed


@pytest.mark.parametrize("event_type", t.EVENT_TYPES)
def test_every_type_maps_onto_the_command_of_its_v1_envelope(event_type: str) -> None:
    message = envelope(event_type)
    expected = v1(message)
    for plain in (False, True):
        assert both_modes(cloud_event(message, plain_type=plain)) == [expected] * 3


def test_an_offset_in_time_is_kept() -> None:
    message = envelope(t.ACKNOWLEDGED, occurred_at="2024-03-01T09:30:00-05:00")
    results = both_modes(cloud_event(message))
    assert results == [v1(message)] * 3
    assert str(results[0].occurred_at.utcoffset()) == "-1 day, 19:00:00"  # type: ignore[union-attr]


def test_a_non_uuid_id_becomes_a_uuid5_of_source_and_id_the_same_each_time() -> None:
    message = envelope(t.ACKNOWLEDGED)
    first = both_modes(cloud_event(message, id="gcms-000042"))
    again = both_modes(cloud_event(message, id="gcms-000042"))
    expected = uuid.uuid5(ID_NAMESPACE, "gcms\ngcms-000042")
    assert {p.event_id for p in first + again} == {expected}  # type: ignore[union-attr]
    other_source = both_modes(cloud_event(message, id="gcms-000042", source="legacy"))
    assert {p.event_id for p in other_source} != {expected}  # type: ignore[union-attr]


def test_ids_and_sources() -> None:
    id_ = "1C9CC9FD-EC1E-493D-957F-EC43DBD16B9E"
    assert event_id_for("gcms", id_) == uuid.UUID(id_)  # a UUID is ours as is, in any case
    assert event_id_for("gcms", "{" + id_ + "}") != uuid.UUID(id_)  # not canonical: hashed
    assert system_name("gcms") == "gcms"
    assert system_name("/ircc/gcms") == "ircc.gcms"
    assert system_name("urn:ircc:gcms") == "urn.ircc.gcms"
    assert system_name("https://gcms.example/events") == "https.gcms.example.events"
    with pytest.raises(ContractError, match=r"^source: must name the system"):
        system_name("/" + "a" * 70)


def test_a_uri_source_is_stored_as_a_system_name() -> None:
    message = envelope(t.ACKNOWLEDGED)
    results = both_modes(cloud_event(message, source="/ircc/gcms"))
    assert {p.source for p in results} == {"ircc.gcms"}  # type: ignore[union-attr]


def test_the_partition_key_stands_for_a_missing_subject() -> None:
    message = envelope(t.ACKNOWLEDGED)
    assert both_modes(cloud_event(message, subject=None)) == [v1(message)] * 3


def test_absent_data_is_an_empty_payload() -> None:
    message = envelope("eligibility.started", payload={})
    event = cloud_event(message)
    s = json.loads(structured(event).value)
    del s["data"]
    assert parse_line(json.dumps(s).encode()) == v1(message)
    assert parse_line(b"", headers(binary(event))) == v1(message)


def test_the_v1_envelope_is_unchanged_whatever_its_headers() -> None:
    message = envelope(t.ACKNOWLEDGED)
    data = raw(message).encode()
    assert parse_line(data, [("content-type", b"application/json"), ("trace", b"x")]) == v1(message)


# ---------------------------------------------------------------- bad events

SUBJECT_PATTERN = "String should match pattern '^[A-Z][0-9]{9}$'"


@pytest.mark.parametrize(
    ("attributes", "kind", "field", "message"),
    [
        ({"subject": "X12", "partitionkey": None}, "invalid_field", "subject", SUBJECT_PATTERN),
        ({"subject": None, "partitionkey": None}, "invalid_field", "subject",
         "field required (the application number)"),
        ({"subject": None, "partitionkey": "F12"}, "invalid_field", "partitionkey",
         SUBJECT_PATTERN),
        ({"partitionkey": "F000999999"}, "invalid_field", "partitionkey", None),
        ({"type": "com.example.other"}, "unknown_type", "type", None),
        ({"time": None}, "invalid_field", "time", "field required (when it happened)"),
        ({"source": "/" + "a" * 70}, "invalid_field", "source", None),
        ({"datacontenttype": "text/plain"}, "invalid_field", "datacontenttype", None),
        ({"specversion": "0.3"}, "unsupported_schema_version", "specversion", None),
    ],
)  # fmt: skip
def test_a_bad_attribute_is_named_in_both_modes(
    attributes: dict[str, Any], kind: str, field: str, message: str | None
) -> None:
    base = envelope(t.ACKNOWLEDGED)
    event = cloud_event(base)
    s = json.loads(structured(event).value)
    for name, value in attributes.items():
        if value is None:
            s.pop(name, None)
        else:
            s[name] = value
    b = binary(event)
    hs = {name: value for name, value in b.headers.items()}
    for name, value in attributes.items():
        header = "content-type" if name == "datacontenttype" else f"ce_{name}"
        if value is None:
            hs.pop(header, None)
        else:
            hs[header] = value.encode()
    binary_field = "content-type" if field == "datacontenttype" else f"ce_{field}"
    for got, name in (
        (parse_line(json.dumps(s).encode()), field),
        (parse_line(b.value, list(hs.items())), binary_field),
    ):
        error = error_in(got)
        assert (error.kind, error.field) == (kind, name), str(error)
        assert str(error).startswith(f"{name}: ")
        if message is not None:
            assert str(error) == f"{name}: {message}"


def test_bad_data_is_named_under_data() -> None:
    payload = {**JSON_PAYLOADS[t.RECEIVED], "principal_applicant": {"uci": "12345678"}}
    event = cloud_event(envelope(t.RECEIVED, payload))
    for got in both_modes(event):
        error = error_in(got)
        assert (error.kind, error.field) == ("invalid_field", "data.principal_applicant.given_name")
        assert str(error) == "data.principal_applicant.given_name: field required"


def test_a_bad_time_names_the_attribute_and_never_echoes_it() -> None:
    event = cloud_event(envelope(t.ACKNOWLEDGED))
    s = json.loads(structured(event).value)
    s["time"] = "Marie Lambert"
    b = binary(event)
    hs = {**b.headers, "ce_time": b"Marie Lambert"}
    for got, name in ((parse_line(json.dumps(s).encode()), "time"),
                      (parse_line(b.value, list(hs.items())), "ce_time")):  # fmt: skip
        error = error_in(got)
        assert error.field == name and "Marie" not in str(error)


@pytest.mark.parametrize(
    ("value", "hs", "kind", "field"),
    [
        (b"not json", None, "invalid_json", "data"),
        (b"{}", [("ce_id", b"\xff\xfe")], "invalid_field", "ce_id"),
        (b"{}", [("ce_id", b"a"), ("ce_id", b"b")], "invalid_field", "ce_id"),
        (b"{}", [("ce_type", b"")], "invalid_field", "ce_type"),
        (b"{}", [("ce_source", b"a\x00b")], "invalid_field", "ce_source"),
    ],
)
def test_bad_binary_messages(
    value: bytes, hs: list[tuple[str, bytes]] | None, kind: str, field: str
) -> None:
    b = binary(cloud_event(envelope(t.ACKNOWLEDGED)))
    found = [(n, v) for n, v in headers(b) if n not in {name for name, _ in hs or ()}]
    error = error_in(parse_line(value, [*found, *(hs or [])]))
    assert (error.kind, error.field) == (kind, field), str(error)


def test_binary_mode_without_specversion() -> None:
    b = binary(cloud_event(envelope(t.ACKNOWLEDGED)))
    error = error_in(parse_line(b.value, [h for h in headers(b) if h[0] != "ce_specversion"]))
    assert (error.kind, str(error)) == ("invalid_field", "ce_specversion: field required")


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (b"[1]", "invalid_json", "a CloudEvent must be a JSON object"),
        (b'{"specversion": "1.0", ', "invalid_json", "not valid JSON"),
        (b'{"specversion": "1.0", "data_base64": "e30="}', "invalid_field",
         "data_base64: data must be JSON, not base64"),
        (b'{"specversion": "1.0"}', "invalid_field", "id: field required"),
        (b'{"specversion": "1.0", "id": 7}', "invalid_field", "id: must be a non-empty string"),
    ],
)  # fmt: skip
def test_bad_structured_messages(value: bytes, kind: str, message: str) -> None:
    error = error_in(parse_line(value, [("content-type", b"application/cloudevents+json")]))
    assert (error.kind, str(error)) == (kind, message)


def test_the_record_key_is_the_partition_key_when_the_event_names_no_case() -> None:
    message = envelope(t.ACKNOWLEDGED)
    event = cloud_event(message, subject=None, partitionkey=None)
    s, b = structured(event), binary(event)
    for value, hs in ((s.value, headers(s)), (s.value, []), (b.value, headers(b))):
        assert parse_line(value, hs, key=NUMBER.encode()) == v1(message)
        error = error_in(parse_line(value, hs, key=b"F12"))
        assert (error.field, str(error)) == ("key", f"key: {SUBJECT_PATTERN}")
        for key in (None, b"", b"\xff"):
            error = error_in(parse_line(value, hs, key=key))
            assert str(error).endswith("field required (the application number)")


def test_the_record_key_never_overrides_the_subject() -> None:
    message = envelope(t.ACKNOWLEDGED)
    b = binary(cloud_event(message))
    assert parse_line(b.value, headers(b), key=b"another key") == v1(message)

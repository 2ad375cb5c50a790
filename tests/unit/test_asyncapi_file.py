"""docs/asyncapi.yaml is the contract as the code enforces it, and valid AsyncAPI 3.0:
regenerate it (`make schema`) when this fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from builders import envelope

from consumers.asyncapi import dead_letter_header_names, document, error_kinds
from consumers.contract import ContractError
from consumers.file_ingest import parse_line
from consumers.kafka.dead_letter_publisher import headers
from consumers.kafka.settings import ConsumerSettings
from consumers.ports import PendingDeadLetter
from domain import application_number
from domain import catalogue as t
from domain.commands import RecordCaseEvent
from tests.cloud_event_producer import binary, cloud_event, structured

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.yaml"
CASE_EVENT_SCHEMA = ROOT / "docs" / "case-event.schema.json"
ASYNCAPI_SCHEMA = ROOT / "tests" / "data" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    return loaded


def validator(doc: dict[str, Any], name: str) -> Any:
    """A validator of one of the document's schemas, its references resolved in it."""
    schema = {"allOf": [{"$ref": f"#/components/schemas/{name}"}], **doc}
    return jsonschema_rs.Draft7Validator(schema)


def test_committed_document_is_current(committed: dict[str, Any]) -> None:
    assert committed == json.loads(json.dumps(document())), (
        "docs/asyncapi.yaml is stale: run `make schema`"
    )


def test_document_is_valid_asyncapi_3(committed: dict[str, Any]) -> None:
    spec = jsonschema_rs.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text()))
    errors = [f"{list(e.instance_path)}: {e}"[:300] for e in spec.iter_errors(committed)]
    assert errors == []
    broken = json.loads(json.dumps(committed))
    broken["operations"]["consumeCaseEvents"]["action"] = "consume"
    assert not spec.is_valid(broken)  # the check does look


def test_payload_schema_is_the_published_case_event_schema(committed: dict[str, Any]) -> None:
    published = json.loads(CASE_EVENT_SCHEMA.read_text())
    schemas = committed["components"]["schemas"]
    for name, schema in published["$defs"].items():
        text = json.dumps(schema).replace("#/$defs/", "#/components/schemas/")
        assert schemas[name] == json.loads(text), name
    root = schemas["CaseEvent"]
    assert root["oneOf"] == [
        {"$ref": r["$ref"].replace("#/$defs/", "#/components/schemas/")} for r in published["oneOf"]
    ]
    assert root["discriminator"] == published["discriminator"]["propertyName"]


def test_topics_key_and_group_are_the_consumers(committed: dict[str, Any]) -> None:
    defaults = ConsumerSettings(bootstrap_servers="")
    assert committed["channels"]["caseEvents"]["address"] == defaults.topic
    assert committed["channels"]["deadLetters"]["address"] == defaults.dead_letter_topic
    binding = committed["operations"]["consumeCaseEvents"]["bindings"]["kafka"]
    assert binding["groupId"]["enum"] == [defaults.group]
    for name in ("caseEventV1", "cloudEventStructured", "cloudEventBinary"):
        key = committed["components"]["messages"][name]["bindings"]["kafka"]["key"]
        assert key["pattern"] == application_number.PATTERN.pattern


@pytest.mark.parametrize("event_type", t.EVENT_TYPES)
def test_messages_of_every_type_meet_their_schemas(
    committed: dict[str, Any], event_type: str
) -> None:
    message = envelope(event_type)
    assert validator(committed, "CaseEvent").is_valid(message)
    event = cloud_event(message)
    assert validator(committed, "CloudEvent").is_valid(json.loads(structured(event).value))
    b = binary(event)
    assert validator(committed, "CloudEventHeaders").is_valid(
        {name: value.decode() for name, value in b.headers.items()}
    )
    assert validator(committed, "CaseEventData").is_valid(json.loads(b.value))
    assert validator(committed, "ApplicationNumber").is_valid(message["application_number"])


def test_the_cloud_event_schema_refuses_what_the_consumer_refuses(
    committed: dict[str, Any],
) -> None:
    event = json.loads(structured(cloud_event(envelope(t.DOCUMENTS_REQUESTED))).value)
    schema = validator(committed, "CloudEvent")
    for change in ({"type": "com.example.moved"}, {"specversion": "0.3"},
                   {"data": {"documents": []}}, {"time": None}):  # fmt: skip
        bad = {**event, **change}
        bad = {k: v for k, v in bad.items() if v is not None}
        assert not schema.is_valid(bad), change


def test_dead_letter_headers_are_the_publishers(committed: dict[str, Any]) -> None:
    row = PendingDeadLetter(
        7, b"{", b"F000123456", "invalid_json", "not valid JSON", None, None, "case-events", 2, 41,
        headers=(("ce_id", b"x"),),
    )  # fmt: skip
    sent = headers(row)
    assert sent[0] == ("ce_id", b"x")  # the original's first
    ours = {name: value.decode() for name, value in sent[1:]}
    schema = committed["components"]["schemas"]["DeadLetterHeaders"]
    assert set(schema["properties"]) == set(dead_letter_header_names())
    assert validator(committed, "DeadLetterHeaders").is_valid(ours)
    kinds = schema["properties"]["error_kind"]["enum"]
    assert kinds == error_kinds()
    assert {ContractError.kind, "invalid_json", "invalid_field", "unknown_type"} <= set(kinds)
    assert {"rule_violation", "case_unreadable", "undecodable_batch"} <= set(kinds)


def test_the_examples_are_one_event_to_the_consumer(committed: dict[str, Any]) -> None:
    messages = committed["components"]["messages"]
    forms = []
    for name, schema in (("caseEventV1", "CaseEvent"), ("cloudEventStructured", "CloudEvent"),
                         ("cloudEventBinary", "CaseEventData")):  # fmt: skip
        (example,) = messages[name]["examples"]
        assert validator(committed, schema).is_valid(example["payload"]), name
        hs = [(k, v.encode()) for k, v in example.get("headers", {}).items()]
        forms.append(parse_line(json.dumps(example["payload"]).encode(), hs))
    headers_example = messages["cloudEventBinary"]["examples"][0]["headers"]
    assert validator(committed, "CloudEventHeaders").is_valid(headers_example)
    assert isinstance(forms[0], RecordCaseEvent) and forms == [forms[0]] * 3

"""CloudEvents 1.0 in, contract v1 out: structured mode and the Kafka binary mode.

A CloudEvent is mapped attribute by attribute onto the v1 envelope, which is then
validated by ``parse_event`` like any other message: the same checks, the same
typed errors, renamed after the attribute at fault (``time``, or ``ce_time`` when
it came as a Kafka header).

- ``id`` -> ``event_id``: a UUID in its canonical form (8-4-4-4-12 hex digits) is
  the event_id itself, so an event sent once as v1 and once as a CloudEvent is one
  event; any other id becomes ``uuid5(ID_NAMESPACE, source + "\\n" + id)``, the same
  for every redelivery (source and id are what CloudEvents makes unique).
- ``type`` -> ``type``: ``ca.gc.ircc.casetrack.<type>`` or the plain ``<type>``.
- ``source`` -> ``source``: kept when it is already a system name (1-64 letters,
  digits, ``.``, ``_``, ``-``), else each run of other characters becomes a ``.``
  (``/ircc/gcms`` -> ``ircc.gcms``).
- ``time`` -> ``occurred_at`` (required here, though optional in CloudEvents).
- ``subject`` -> ``application_number``; without it, the ``partitionkey``
  extension (Kafka binding); both given must agree. Without either, the Kafka
  record's key (the binding's partitionkey).
- ``data`` -> ``payload`` (JSON only: ``datacontenttype`` absent or a JSON media
  type; absent data is ``{}``).

Error texts never echo input values, as in contract.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final
from uuid import UUID, uuid5

import orjson

from consumers.contract import (
    CONTROL_CHARACTERS,
    ContractError,
    InvalidField,
    InvalidJson,
    UnknownEventType,
    UnsupportedSchemaVersion,
    parse_event,
)
from domain.catalogue import EVENT_TYPES
from domain.commands import RecordCaseEvent

SPECVERSION: Final = "1.0"
TYPE_PREFIX: Final = "ca.gc.ircc.casetrack."
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json"
HEADER_PREFIX: Final = "ce_"
CONTENT_TYPE_HEADER: Final = "content-type"
# uuid5(NAMESPACE_URL, "https://casetrack.example/cloudevents/id"): fixed for ever.
ID_NAMESPACE: Final = UUID("acf8be5b-804d-52df-afc4-54dc414da438")

MAX_ATTRIBUTE_LENGTH: Final = 256
_CANONICAL_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_SYSTEM_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_OTHER_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
_JSON_MEDIA_TYPE = re.compile(r"^(application|text)/([a-z0-9.+-]+\+)?json$")

# The v1 envelope's field -> the CloudEvents attribute it came from.
_ATTRIBUTE_OF = {
    "event_id": "id",
    "type": "type",
    "source": "source",
    "occurred_at": "time",
    "application_number": "subject",
    "payload": "data",
}
_MISSING: Final = object()


def cloud_event_type(event_type: str) -> str:
    """The CloudEvents type casetrack publishes for one of its event types."""
    return TYPE_PREFIX + event_type


def is_cloud_event(raw: bytes, headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether a message is a CloudEvent: a ``ce_`` header (binary mode), the structured
    content type, or a JSON object with ``specversion`` (which v1 never has)."""
    if not headers:
        return b'"specversion"' in raw and _has_specversion(raw)
    if binary_mode(headers):
        return True
    content_type = _header(headers, CONTENT_TYPE_HEADER)
    if content_type is not None and _media_type(content_type) == STRUCTURED_CONTENT_TYPE.encode():
        return True
    return b'"specversion"' in raw and _has_specversion(raw)


def binary_mode(headers: Sequence[tuple[str, bytes]]) -> bool:
    return any(name.lower().startswith(HEADER_PREFIX) for name, _ in headers)


def parse_cloud_event(
    raw: bytes, headers: Sequence[tuple[str, bytes]] = (), key: bytes | None = None
) -> RecordCaseEvent:
    """One CloudEvent (binary mode when it has ``ce_`` headers, else structured) as
    the command its v1 envelope would give; raises a ContractError naming the attribute.

    ``key``: the Kafka record's key, the ``partitionkey`` of the Kafka binding when the
    event has no such attribute; it names the case only when ``subject`` is absent.
    """
    record_key = _text(key)
    if binary_mode(headers):
        return _binary(raw, headers, record_key)
    return _structured(raw, record_key)


# ---------------------------------------------------------------- the two modes


def _structured(raw: bytes, record_key: str | None) -> RecordCaseEvent:
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidJson("not valid JSON") from None
    if not isinstance(event, dict):
        raise InvalidJson("a CloudEvent must be a JSON object")
    if "data_base64" in event:
        raise InvalidField("data_base64: data must be JSON, not base64", "data_base64")
    data = event.get("data", _MISSING)
    return _mapped(event, data, record_key, name=lambda attribute: attribute)


def _binary(
    raw: bytes, headers: Sequence[tuple[str, bytes]], record_key: str | None
) -> RecordCaseEvent:
    attributes: dict[str, Any] = {}
    for header, value in headers:
        lowered = header.lower()
        if lowered.startswith(HEADER_PREFIX):
            attribute = lowered[len(HEADER_PREFIX) :]
        elif lowered == CONTENT_TYPE_HEADER:
            attribute = "datacontenttype"
        else:
            continue
        name = _binary_name(attribute)
        if attribute in attributes:
            raise InvalidField(f"{name}: header repeated", name)
        try:
            attributes[attribute] = value.decode("utf-8") if value is not None else None
        except UnicodeDecodeError:
            raise InvalidField(f"{name}: not valid UTF-8", name) from None
    data: object = _MISSING
    if raw.strip():
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidJson("data: not valid JSON", "data") from None
    return _mapped(attributes, data, record_key, name=_binary_name)


def _binary_name(attribute: str) -> str:
    if attribute == "datacontenttype":
        return CONTENT_TYPE_HEADER
    if attribute == "data":
        return "data"
    return HEADER_PREFIX + attribute


# ---------------------------------------------------------------- the mapping


class _Named:
    """Checks of one event's attributes, each error naming the attribute as it came."""

    def __init__(self, attributes: Mapping[str, Any], name: Any) -> None:
        self.attributes = attributes
        self.name = name

    def string(self, attribute: str, *, required: bool = True, what: str = "") -> str | None:
        value = self.attributes.get(attribute)
        name = self.name(attribute)
        if value is None:
            if required:
                raise InvalidField(f"{name}: field required{what}", name)
            return None
        if not isinstance(value, str) or not value:
            raise InvalidField(f"{name}: must be a non-empty string", name)
        if len(value) > MAX_ATTRIBUTE_LENGTH:
            raise InvalidField(f"{name}: at most {MAX_ATTRIBUTE_LENGTH} characters", name)
        if CONTROL_CHARACTERS.search(value):
            raise InvalidField(f"{name}: must not contain control characters", name)
        return value


def _mapped(
    attributes: Mapping[str, Any], data: object, record_key: str | None, *, name: Any
) -> RecordCaseEvent:
    check = _Named(attributes, name)
    version = attributes.get("specversion")
    if version is None:
        raise InvalidField(f"{name('specversion')}: field required", name("specversion"))
    if version != SPECVERSION:
        raise UnsupportedSchemaVersion(
            f"{name('specversion')}: only CloudEvents {SPECVERSION} is supported",
            name("specversion"),
        )
    event_id = check.string("id")
    source = check.string("source")
    event_type = check.string("type")
    assert event_id is not None and source is not None and event_type is not None
    plain = event_type.removeprefix(TYPE_PREFIX)
    if plain not in EVENT_TYPES:
        raise UnknownEventType(
            f"{name('type')}: not a casetrack event type ({TYPE_PREFIX}<type> or <type>)",
            name("type"),
        )
    content_type = check.string("datacontenttype", required=False)
    if content_type is not None and not _JSON_MEDIA_TYPE.match(
        content_type.split(";")[0].strip().lower()
    ):
        raise InvalidField(
            f"{name('datacontenttype')}: data must be JSON (application/json)",
            name("datacontenttype"),
        )
    time = attributes.get("time")
    if time is None:
        raise InvalidField(f"{name('time')}: field required (when it happened)", name("time"))
    subject = check.string("subject", required=False)
    key = check.string("partitionkey", required=False)
    if subject is not None and key is not None and key != subject:
        raise InvalidField(
            f"{name('partitionkey')}: must equal {name('subject')}, the application number",
            name("partitionkey"),
        )
    number, number_name = subject, name("subject")
    if number is None:
        number, number_name = key, name("partitionkey")
    if number is None:
        number, number_name = record_key, "key"
    if number is None:
        raise InvalidField(
            f"{name('subject')}: field required (the application number)", name("subject")
        )
    envelope = {
        "event_id": str(event_id_for(source, event_id)),
        "schema_version": 1,
        "type": plain,
        "application_number": number,
        "occurred_at": time,
        "source": system_name(source, name("source")),
        "payload": {} if data is _MISSING else data,
    }
    try:
        return parse_event(orjson.dumps(envelope))
    except ContractError as e:
        raise _renamed(e, name, number_name) from None


def event_id_for(source: str, event_id: str) -> UUID:
    """Our event_id for a CloudEvent's (source, id): the id when it is a canonical UUID."""
    if _CANONICAL_UUID.match(event_id):
        return UUID(event_id)
    return uuid5(ID_NAMESPACE, f"{source}\n{event_id}")


def system_name(source: str, name: str = "source") -> str:
    """Our ``source`` for a CloudEvents source (a URI-reference)."""
    if _SYSTEM_NAME.match(source):
        return source
    mapped = _OTHER_CHARACTERS.sub(".", source).strip(".")
    if not _SYSTEM_NAME.match(mapped):
        raise InvalidField(
            f"{name}: must name the system in at most 64 letters, digits, '.', '_' or '-'"
            " (other characters count as '.')",
            name,
        )
    return mapped


def _renamed(error: ContractError, name: Any, number_name: str) -> ContractError:
    """The envelope's error, with its field named as the CloudEvent's attribute (the
    application number's as where it came from: ``number_name``)."""
    field = error.field or ""
    head, _, rest = field.partition(".")
    attribute = _ATTRIBUTE_OF.get(head)
    if attribute is None:
        return error
    named = number_name if attribute == "subject" else name(attribute)
    renamed = named + (f".{rest}" if rest else "")
    message = str(error)
    if message.startswith(field):
        message = renamed + message[len(field) :]
    return type(error)(message, renamed)


# ---------------------------------------------------------------- headers


def _text(key: bytes | None) -> str | None:
    """A record key as text; a key that is not UTF-8 (or empty) names nothing."""
    if not key:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _header(headers: Sequence[tuple[str, bytes]], wanted: str) -> bytes | None:
    for name, value in headers:
        if name.lower() == wanted:
            return value
    return None


def _media_type(value: bytes) -> bytes:
    return value.split(b";")[0].strip().lower()


def _has_specversion(raw: bytes) -> bool:
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(event, dict) and "specversion" in event

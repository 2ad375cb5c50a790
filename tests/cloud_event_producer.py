"""A CloudEvents producer for the tests: the CloudEvents Python SDK turns a v1 envelope
(a dict) into the same event as a CloudEvent, and into Kafka messages in structured
and binary mode (cloudevents.core.bindings.kafka: to_structured, to_binary)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cloudevents.core.bindings.kafka import KafkaMessage, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from consumers.cloud_events import cloud_event_type

FORMAT = JSONFormat()


def cloud_event(envelope: dict[str, Any], *, plain_type: bool = False, **attributes: Any) -> Any:
    """``envelope`` as a CloudEvent: id, type, source, time, subject (and partitionkey,
    the Kafka key), data. ``attributes`` replace or add attributes (None removes one)."""
    values: dict[str, Any] = {
        "id": envelope["event_id"],
        "type": envelope["type"] if plain_type else cloud_event_type(envelope["type"]),
        "source": envelope["source"],
        "time": datetime.fromisoformat(envelope["occurred_at"]),
        "subject": envelope["application_number"],
        "datacontenttype": "application/json",
        "partitionkey": envelope["application_number"],
    }
    values.update(attributes)
    return CloudEvent(
        attributes={k: v for k, v in values.items() if v is not None}, data=envelope["payload"]
    )


def structured(event: Any, key_mapper: Any = None) -> KafkaMessage:
    return to_structured(event, FORMAT, key_mapper)


def binary(event: Any, key_mapper: Any = None) -> KafkaMessage:
    """``key_mapper``: the SDK's way to key a record by something else than partitionkey."""
    return to_binary(event, FORMAT, key_mapper)


def headers(message: KafkaMessage) -> list[tuple[str, bytes]]:
    """The message's headers as a Kafka record carries them."""
    return list(message.headers.items())


def key(message: KafkaMessage) -> bytes | None:
    return message.key.encode() if isinstance(message.key, str) else message.key

"""From an event row as the log stores it to the record its leaf covers.

casetrack stores an event as four columns: the case id, the case version, the event's type
(its topic) and its payload (eventsourcing's JSON, whose typed values are written as
``{"_type_": ..., "_data_": ...}``). The event id, source, times and class version are read
from the payload. A payload that does not hold one of them (a corrupt or foreign row) still
gets a leaf: the missing field is encoded as empty (the nil UUID, "", the epoch, class
version 1), and the leaf still covers the payload's bytes, so no stored row escapes the tree.

The standard library parses the payload; orjson, when installed, does the same faster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.integrity.leaves import CHAIN_0, LeafRecord, chain, leaf_and_digests

_loads: Callable[[bytes], Any]
try:  # the same result for every payload casetrack writes; ~4x faster
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - an auditor's machine without orjson
    from json import loads as _loads

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NIL = UUID(int=0)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a µs per event written
class StoredRow:
    """One row of the events table: its notification id and the four stored columns."""

    notification_id: int
    case_id: UUID
    case_version: int
    topic: str
    state: bytes


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a µs per event written
class HashedEvent:
    """What the log keeps beside a stored event (the event_hashes table): its place in the
    Merkle tree, the identity of the row it was computed from, its leaf hash, its case's
    chain link, and the field digests that name a changed field (leaves.field_digests)."""

    leaf_index: int
    notification_id: int
    case_id: UUID
    case_version: int
    leaf: bytes
    chain: bytes
    fields: bytes


def hash_events(
    rows: Sequence[StoredRow], previous_links: Mapping[UUID, bytes], first_index: int
) -> list[HashedEvent]:
    """The hashes of `rows` (in log order), appended at leaf index `first_index`: each case's
    chain continues from its link in `previous_links`, or starts at CHAIN_0."""
    links = dict(previous_links)
    hashed = []
    for i, row in enumerate(rows):
        leaf, fields = leaf_and_digests(leaf_record(row))
        link = chain(links.get(row.case_id, CHAIN_0), leaf)
        links[row.case_id] = link
        hashed.append(
            HashedEvent(
                first_index + i,
                row.notification_id,
                row.case_id,
                row.case_version,
                leaf,
                link,
                fields,
            )
        )
    return hashed


def leaf_record(row: StoredRow) -> LeafRecord:
    """The fields of `row` that its leaf covers (see the module docstring for missing ones)."""
    payload = _payload(row.state)
    class_version = payload.get("class_version", 1)
    return LeafRecord(
        case_id=row.case_id,
        case_version=row.case_version,
        event_type=row.topic,
        class_version=class_version
        if type(class_version) is int and 0 <= class_version < 1 << 32
        else 1,
        event_id=_typed(payload.get("event_id"), "uuid_hex", UUID, _NIL),
        source=_text(payload.get("source")),
        occurred_at=_typed(payload.get("occurred_at"), "datetime_iso", _aware, _EPOCH),
        recorded_at=_typed(payload.get("timestamp"), "datetime_iso", _aware, _EPOCH),
        payload=bytes(row.state),
    )


def _payload(state: bytes) -> dict[str, Any]:
    try:
        value = _loads(state)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _typed(value: object, kind: str, parse: Callable[[str], Any], default: Any) -> Any:
    if not (isinstance(value, dict) and value.get("_type_") == kind):
        return default
    data = value.get("_data_")
    if not isinstance(data, str):
        return default
    try:
        return parse(data)
    except ValueError:
        return default


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.utcoffset() is None:
        raise ValueError("no time zone")
    return moment

"""From an event row as the log stores it to the record its leaf covers.

casetrack stores an event as four columns: the case id, the case version, the event's type
(its topic) and its payload (eventsourcing's JSON, whose typed values are written as
``{"_type_": ..., "_data_": ...}``). The event id, source, times and class version are read
from the payload. A payload that does not hold one of them (a corrupt or foreign row) still
gets a leaf: the missing field is encoded as empty (the nil UUID, "", the epoch, class
version 1), and the leaf still covers the payload's bytes, so no stored row escapes the tree.

The standard library parses the payload; orjson, when installed, does the same faster. A
payload that does not parse counts as holding none of the fields: bad JSON, and JSON nested
more than 1024 levels deep. orjson refuses those with a ValueError; the standard library's
parser runs out of stack (a RecursionError) a little below 1000 levels, at a depth that
depends on its caller, so `_payload` then counts the levels itself and parses again with
room up to 1024: both parsers give every stored row the same leaf.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256 as _sha256
from typing import Any, Protocol
from uuid import UUID

from domain.integrity.leaves import (
    CHAIN_0,
    LeafEncodingError,
    LeafRecord,
    Part,
    class_part,
    hash_fields,
    hash_parts,
    microseconds,
    text_part,
)

_loads: Callable[[bytes], Any]
try:  # the same result for every payload casetrack writes; ~4x faster
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - an auditor's machine without orjson
    from json import loads as _loads

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ORJSON_MAX_DEPTH = 1024
_NIL = UUID(int=0)
_MICROSECOND = timedelta(microseconds=1)
_NIL_BYTES = _NIL.bytes
_fromisoformat = datetime.fromisoformat


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


class Envelope(Protocol):
    """What the writer knows of an event it stores besides the stored row: the values that
    the payload also holds, so the writer need not parse back the JSON it just wrote. The
    domain events themselves are the envelopes (no object is made per event); the class
    version is their class's ``class_version`` (1 without one), as the stored payload
    holds it. Must equal what `leaf_record` reads from that payload; the tests hold the two
    paths to the same leaves."""

    @property
    def event_id(self) -> UUID: ...
    @property
    def source(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def timestamp(self) -> datetime:
        """When the event was recorded (the leaf's recorded_at)."""
        ...


def hash_events(
    rows: Sequence[StoredRow],
    previous_links: Mapping[UUID, bytes],
    first_index: int,
    envelopes: Sequence[Envelope] | None = None,
) -> list[HashedEvent]:
    """The hashes of `rows` (in log order), appended at leaf index `first_index`: each case's
    chain continues from its link in `previous_links`, or starts at CHAIN_0. With the
    writer's `envelopes` (one per row), the payloads are not parsed."""
    columns = [(r.case_id, r.case_version, r.topic, r.state) for r in rows]
    if envelopes is None:
        leaves = [column_leaf(c.bytes, v, t, s) for c, v, t, s in columns]
    else:
        leaves = list(envelope_leaves(columns, envelopes))
    links, _ = chain_links([r.case_id for r in rows], [leaf for leaf, _ in leaves], previous_links)
    return [
        HashedEvent(first_index + i, row.notification_id, row.case_id, row.case_version, leaf,
                    link, fields)
        for i, (row, (leaf, fields), link) in enumerate(zip(rows, leaves, links, strict=True))
    ]  # fmt: skip


def envelope_leaves(
    columns: Iterable[tuple[UUID, int, str, bytes]], envelopes: Sequence[Envelope]
) -> Iterator[tuple[bytes, bytes]]:
    """(leaf hash, field digests) of each event the writer stores, one at a time, from its
    stored columns (case id, case version, topic, payload) and its envelope: nothing from
    the database, so the writer hashes each event while the server inserts the rows before
    it. A batch has few distinct event types, sources and class versions: each is laid out
    once."""
    texts: dict[str, Part] = {}
    classes: dict[type, Part] = {}
    for (case_id, version, topic, state), e in zip(columns, envelopes, strict=True):
        event_type = texts.get(topic)
        if event_type is None:
            event_type = texts[topic] = text_part(topic.encode())
        source = texts.get(e.source)
        if source is None:
            source = texts[e.source] = text_part(e.source.encode())
        klass = classes.get(type(e))
        if klass is None:
            klass = classes[type(e)] = class_part(getattr(type(e), "class_version", 1))
        yield hash_parts(
            case_id.bytes, version, event_type, klass, e.event_id.bytes, source,
            microseconds(e.occurred_at), microseconds(e.timestamp), state,
        )  # fmt: skip


def chain_links(
    cases: Sequence[UUID], leaves: Sequence[bytes], previous_links: Mapping[UUID, bytes]
) -> tuple[list[bytes], dict[UUID, bytes]]:
    """Each event's chain link (events in log order; `cases[i]` is event i's case), each
    case continuing from its link in `previous_links` or from CHAIN_0; and the last link
    of every case here."""
    last = dict(previous_links)
    links: list[bytes] = []
    append = links.append
    get = last.get
    for case, leaf in zip(cases, leaves, strict=True):
        link = _sha256(get(case, CHAIN_0) + leaf).digest()
        last[case] = link
        append(link)
    return links, last


def leaf_record(row: StoredRow) -> LeafRecord:
    """The fields of `row` that its leaf covers (see the module docstring for missing ones),
    read by the same rules as `column_leaf` (times come back in UTC)."""
    class_version, event_id, source, occurred_us, recorded_us = _payload_fields(row.state)
    return LeafRecord(
        case_id=row.case_id,
        case_version=row.case_version,
        event_type=row.topic,
        class_version=class_version,
        event_id=UUID(bytes=event_id),
        source=source,
        occurred_at=_EPOCH + occurred_us * _MICROSECOND,
        recorded_at=_EPOCH + recorded_us * _MICROSECOND,
        payload=bytes(row.state),
    )


def _payload(state: bytes) -> dict[str, Any]:
    try:
        value = _loads(state)
    except ValueError:
        return {}
    except RecursionError:
        value = _deep_payload(state)
    return value if isinstance(value, dict) else {}


def _deep_payload(state: bytes) -> object:
    """Only the standard library's parser gets here (orjson refuses deep nesting with a
    ValueError), at a depth that depends on its caller's stack: apply orjson's rule instead
    (more than 1024 levels is unparsable), so every machine computes the same leaf."""
    brackets = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", state, flags=re.DOTALL)
    depth = deepest = 0
    for bracket in re.findall(rb"[][{}]", brackets):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    if deepest > _ORJSON_MAX_DEPTH:
        return {}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + _ORJSON_MAX_DEPTH + 100)
    try:
        return _loads(state)
    except (ValueError, RecursionError):
        return {}
    finally:
        sys.setrecursionlimit(limit)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def column_leaf(case_id: bytes, case_version: int, topic: str, state: bytes) -> tuple[bytes, bytes]:
    """``leaves.leaf_and_digests(leaf_record(row))`` straight from the stored columns (the
    case id as its 16 bytes), without the intermediate objects: the verifier's inner loop.
    Both read the payload with `_payload_fields`."""
    if len(case_id) != 16:
        raise LeafEncodingError(f"a case id is 16 bytes, not {len(case_id)}")
    class_version, event_id, source, occurred_us, recorded_us = _payload_fields(state)
    return hash_fields(
        case_id,
        case_version,
        topic.encode(),
        class_version,
        event_id,
        source.encode(),
        occurred_us,
        recorded_us,
        state,
    )


def _payload_fields(state: bytes) -> tuple[int, bytes, str, int, int]:
    """(class version, event id bytes, source, occurred µs, recorded µs) as the payload holds
    them, each missing or malformed one as empty (the module docstring)."""
    get = _payload(state).get
    class_version = get("class_version", 1)
    if not (type(class_version) is int and 0 <= class_version < 1 << 32):
        class_version = 1
    return (
        class_version,
        _uuid_bytes(get("event_id")),
        _text(get("source")),
        _microseconds(get("occurred_at")),
        _microseconds(get("timestamp")),
    )


def _uuid_bytes(value: object) -> bytes:
    """The bytes of a {"_type_": "uuid_hex"} value, else the nil UUID's; 32 hex digits (what
    eventsourcing writes) take a shortcut that reads them as UUID() would."""
    if not (type(value) is dict and value.get("_type_") == "uuid_hex"):
        return _NIL_BYTES
    data = value.get("_data_")
    if type(data) is not str:
        return _NIL_BYTES
    if len(data) == 32:
        try:
            raw = bytes.fromhex(data)
        except ValueError:
            raw = b""
        if len(raw) == 16:
            return raw
    try:
        return UUID(data).bytes
    except ValueError:
        return _NIL_BYTES


def _microseconds(value: object) -> int:
    """The leaf's µs of an aware {"_type_": "datetime_iso"} value whose UTC instant a
    datetime can hold, else 0 (the epoch)."""
    if not (type(value) is dict and value.get("_type_") == "datetime_iso"):
        return 0
    data = value.get("_data_")
    if type(data) is not str:
        return 0
    try:
        moment = _fromisoformat(data)
    except ValueError:
        return 0
    if moment.utcoffset() is None:
        return 0
    try:  # 0001-01-01T00:00+01:00 has no instant a datetime can hold: malformed too
        moment.astimezone(UTC)
    except OverflowError:
        return 0
    return (moment - _EPOCH) // _MICROSECOND

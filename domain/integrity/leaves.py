"""The canonical leaf encoding of a stored event, its leaf hash, and the per-case chain.

Leaf layout, version 1 (all integers big-endian; `bytes[n]` is raw; `str` and `blob` are a
u32 byte length followed by that many bytes, UTF-8 for `str`):

    u8        format version (1)
    bytes[16] case id (UUID bytes)
    u64       case version
    str       event type
    u32       class version
    bytes[16] event id (UUID bytes)
    str       source
    i64       occurred_at, microseconds since 1970-01-01T00:00:00Z
    i64       recorded_at, microseconds since 1970-01-01T00:00:00Z
    blob      payload, exactly as stored (ciphertext once personal data is encrypted)

Every field has a fixed width or a length prefix, so no two different events share an encoding,
and the version byte lets a later layout coexist with this one. The leaf hash is the RFC 6962
leaf hash of the encoding. The chain links a case's leaves in version order:
chain_v = SHA-256(chain_{v-1} || leaf_v), starting from CHAIN_0, so deleting, inserting or
reordering a case's events changes every later link.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any
from uuid import UUID
from zlib import crc32

from domain.integrity.merkle import LEAF_PREFIX, hash_leaf

LEAF_FORMAT_VERSION = 1
CHAIN_0 = sha256(b"casetrack chain v1").digest()
"""The link before a case's first event: SHA-256 of the ASCII text "casetrack chain v1"."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_VERSION_AND_CASE = struct.Struct(">B16sQ")
_CLASS_VERSION_AND_EVENT = struct.Struct(">I16s")
_TIMES = struct.Struct(">qq")


class LeafEncodingError(ValueError):
    """An event that has no canonical encoding, or bytes that are not one."""


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a µs per event written
class LeafRecord:
    """The stored columns of one event that its leaf covers."""

    case_id: UUID
    case_version: int
    event_type: str
    class_version: int
    event_id: UUID
    source: str
    occurred_at: datetime
    recorded_at: datetime
    payload: bytes


FIELDS = (
    "case id",
    "case version",
    "event type",
    "class version",
    "event id",
    "source",
    "occurred_at",
    "recorded_at",
    "payload",
)
"""The leaf's fields, in layout order: what a mismatch is named by."""

_DIGEST_SIZE = 4
_CRCS = struct.Struct(">9I")
_pack_crcs = _CRCS.pack
_pack_u32 = _U32.pack
_pack_u64 = _U64.pack
_pack_i64 = _I64.pack
_sha256 = sha256
_U32_END = 1 << 32
_U64_END = 1 << 64
_LEAF_START = LEAF_PREFIX + bytes([LEAF_FORMAT_VERSION])


def encode_leaf(record: LeafRecord) -> bytes:
    """The canonical bytes of an event (the layout in this module's docstring)."""
    return bytes([LEAF_FORMAT_VERSION]) + b"".join(_fields(record))


def field_digests(record: LeafRecord) -> bytes:
    """A CRC-32 per field, in FIELDS order: kept beside the leaf so that, when a stored event
    no longer matches its leaf, the verifier can say which field changed. Only a diagnostic,
    so a checksum, not a cryptographic hash: the leaf, not these, detects the change."""
    return _digests(_fields(record))


def leaf_and_digests(record: LeafRecord) -> tuple[bytes, bytes]:
    """(leaf_hash(record), field_digests(record)), encoding the fields once."""
    parts = _fields(record)
    return sha256(_LEAF_START + b"".join(parts)).digest(), _digests(parts)


def changed_fields(record: LeafRecord, digests: bytes) -> list[str]:
    """The fields of `record` whose digests differ from `digests` (all of them when
    `digests` is not a field_digests value)."""
    if len(digests) != _DIGEST_SIZE * len(FIELDS):
        return list(FIELDS)
    now = field_digests(record)
    return [
        name
        for i, name in enumerate(FIELDS)
        if now[i * _DIGEST_SIZE : (i + 1) * _DIGEST_SIZE]
        != digests[i * _DIGEST_SIZE : (i + 1) * _DIGEST_SIZE]
    ]


def _digests(parts: tuple[bytes, ...]) -> bytes:
    return _CRCS.pack(*map(crc32, parts))


def hash_fields(
    case_id: bytes,
    case_version: int,
    event_type: bytes,
    class_version: int,
    event_id: bytes,
    source: bytes,
    occurred_us: int,
    recorded_us: int,
    payload: bytes,
) -> tuple[bytes, bytes]:
    """(leaf hash, field digests) from each field's raw value (ids as 16 bytes, texts as
    UTF-8, times in µs since the epoch): what every path that hashes an event computes (a
    LeafRecord, the stored columns, the writer's events), through the one ``hash_parts``."""
    return hash_parts(
        case_id, case_version, text_part(event_type), class_part(class_version), event_id,
        text_part(source), occurred_us, recorded_us, payload,
    )  # fmt: skip


Part = tuple[bytes, int]
"""A field's bytes in the layout and their CRC-32: a writer computes each distinct event
type, source and class version once per batch rather than once per event."""


def text_part(text: bytes) -> Part:
    """A `str` field (event type, source): its u32 length, its UTF-8 bytes, and their CRC."""
    if len(text) >= _U32_END:
        raise LeafEncodingError("a field is longer than 4 GiB")
    part = _pack_u32(len(text)) + text
    return part, crc32(part)


def class_part(class_version: int) -> Part:
    """The class version field (a u32) and its CRC."""
    if not 0 <= class_version < _U32_END:
        raise LeafEncodingError(f"class version {class_version} is not a u32")
    part = _pack_u32(class_version)
    return part, crc32(part)


def hash_parts(
    case_id: bytes,
    case_version: int,
    event_type: Part,
    class_version: Part,
    event_id: bytes,
    source: Part,
    occurred_us: int,
    recorded_us: int,
    payload: bytes,
) -> tuple[bytes, bytes]:
    """``hash_fields`` with the event type, class version and source already laid out: the
    same bytes as ``_parts`` gives, built with as few calls as it takes (this runs for every
    event stored and every event verified). The payload's digest continues the CRC of its
    length prefix rather than copying the two together (zlib's running CRC is the same)."""
    if len(case_id) != 16 or len(event_id) != 16:
        raise LeafEncodingError("a case id and an event id are 16 bytes each")
    if not 0 <= case_version < _U64_END:
        raise LeafEncodingError(f"case version {case_version} is not a u64")
    if len(payload) >= _U32_END:
        raise LeafEncodingError("a field is longer than 4 GiB")
    version = _pack_u64(case_version)
    occurred = _pack_i64(occurred_us)
    recorded = _pack_i64(recorded_us)
    size = _pack_u32(len(payload))
    type_bytes, type_crc = event_type
    class_bytes, class_crc = class_version
    source_bytes, source_crc = source
    leaf = _sha256(
        b"".join((_LEAF_START, case_id, version, type_bytes, class_bytes, event_id,
                  source_bytes, occurred, recorded, size, payload))
    ).digest()  # fmt: skip
    digests = _pack_crcs(
        crc32(case_id), crc32(version), type_crc, class_crc, crc32(event_id), source_crc,
        crc32(occurred), crc32(recorded), crc32(payload, crc32(size)),
    )  # fmt: skip
    return leaf, digests


def microseconds(moment: datetime) -> int:
    """An aware time as the leaf's µs since 1970-01-01T00:00:00Z (a naive one has no
    instant: subtracting it from the aware epoch raises TypeError)."""
    return (moment - _EPOCH) // _MICROSECOND


def _fields(record: LeafRecord) -> tuple[bytes, ...]:
    """Each field's bytes in the layout, in FIELDS order (the version byte excluded)."""
    return _parts(
        record.case_id.bytes,
        record.case_version,
        record.event_type.encode(),
        record.class_version,
        record.event_id.bytes,
        record.source.encode(),
        _microseconds(record.occurred_at, "occurred_at"),
        _microseconds(record.recorded_at, "recorded_at"),
        bytes(record.payload),
    )


def _parts(
    case_id: bytes,
    case_version: int,
    event_type: bytes,
    class_version: int,
    event_id: bytes,
    source: bytes,
    occurred_us: int,
    recorded_us: int,
    payload: bytes,
) -> tuple[bytes, ...]:
    if not (0 <= case_version < _U64_END and 0 <= class_version < _U32_END):
        raise LeafEncodingError(f"case version {case_version} is not a u64 or class version"
                                f" {class_version} not a u32")  # fmt: skip
    if len(case_id) != 16 or len(event_id) != 16:
        raise LeafEncodingError("a case id and an event id are 16 bytes each")
    if len(payload) >= _U32_END or len(event_type) >= _U32_END or len(source) >= _U32_END:
        raise LeafEncodingError("a field is longer than 4 GiB")
    return (
        case_id,
        _pack_u64(case_version),
        _pack_u32(len(event_type)) + event_type,
        _pack_u32(class_version),
        event_id,
        _pack_u32(len(source)) + source,
        _pack_i64(occurred_us),
        _pack_i64(recorded_us),
        _pack_u32(len(payload)) + payload,
    )


def decode_leaf(data: bytes) -> LeafRecord:
    """The event that `encode_leaf` turned into `data` (times come back in UTC)."""
    reader = _Reader(data)
    version, case_id, case_version = reader.fixed(_VERSION_AND_CASE, "case id and version")
    if version != LEAF_FORMAT_VERSION:
        raise LeafEncodingError(f"leaf format version {version} is not {LEAF_FORMAT_VERSION}")
    event_type = reader.text("event type")
    class_version, event_id = reader.fixed(_CLASS_VERSION_AND_EVENT, "class version")
    source = reader.text("source")
    occurred, recorded = reader.fixed(_TIMES, "times")
    payload = reader.sized("payload")
    if reader.offset != len(data):
        raise LeafEncodingError(f"{len(data) - reader.offset} bytes follow the payload")
    return LeafRecord(
        case_id=UUID(bytes=case_id),
        case_version=case_version,
        event_type=event_type,
        class_version=class_version,
        event_id=UUID(bytes=event_id),
        source=source,
        occurred_at=_EPOCH + occurred * _MICROSECOND,
        recorded_at=_EPOCH + recorded * _MICROSECOND,
        payload=payload,
    )


def leaf_hash(record: LeafRecord) -> bytes:
    """The RFC 6962 leaf hash of the event's canonical encoding."""
    return hash_leaf(encode_leaf(record))


def chain(previous: bytes, leaf: bytes) -> bytes:
    """The case's next link: SHA-256(previous link || this event's leaf hash)."""
    return sha256(previous + leaf).digest()


def _microseconds(moment: datetime, what: str) -> int:
    if moment.utcoffset() is None:
        raise LeafEncodingError(f"{what} has no time zone, so its instant is unknown")
    return (moment - _EPOCH) // _MICROSECOND


class _Reader:
    """Reads the leaf layout front to back, naming the field that runs short."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, n: int, what: str) -> bytes:
        end = self.offset + n
        if end > len(self.data):
            raise LeafEncodingError(f"the leaf ends inside its {what}")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def fixed(self, layout: struct.Struct, what: str) -> tuple[Any, ...]:
        return layout.unpack(self.take(layout.size, what))

    def sized(self, what: str) -> bytes:
        (n,) = _U32.unpack(self.take(_U32.size, what))
        return self.take(n, what)

    def text(self, what: str) -> str:
        try:
            return self.sized(what).decode()
        except UnicodeDecodeError as error:
            raise LeafEncodingError(f"the {what} is not UTF-8") from error

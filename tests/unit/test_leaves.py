"""domain.integrity.leaves: the documented leaf layout, byte for byte, and the chain."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from hashlib import sha256
from uuid import UUID

import pytest

from domain.integrity.leaves import (
    CHAIN_0,
    LeafEncodingError,
    LeafRecord,
    chain,
    decode_leaf,
    encode_leaf,
    leaf_hash,
)

RECORD = LeafRecord(
    case_id=UUID("00112233-4455-6677-8899-aabbccddeeff"),
    case_version=2,
    event_type="Submitted",
    class_version=1,
    event_id=UUID("ffeeddcc-bbaa-9988-7766-554433221100"),
    source="kafka:intake/0@7",
    occurred_at=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    recorded_at=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    payload=b'{"a":1}',
)

# Written out by hand from the layout in the module docstring, field by field.
EXPECTED = bytes.fromhex(
    "01"  # format version
    "00112233445566778899aabbccddeeff"  # case id
    "0000000000000002"  # case version
    "00000009"
    + b"Submitted".hex()  # event type
    + "00000001"  # class version
    "ffeeddccbbaa99887766554433221100"  # event id
    "00000010"
    + b"kafka:intake/0@7".hex()  # source
    + (1767323045123456).to_bytes(8, "big").hex()  # occurred_at, µs since the epoch
    + "ffffffffffffffff"  # recorded_at: one microsecond before the epoch
    "00000007" + b'{"a":1}'.hex()  # payload
)


def test_the_encoding_follows_the_documented_layout() -> None:
    assert encode_leaf(RECORD) == EXPECTED


def test_the_leaf_hash_is_the_rfc6962_hash_of_the_encoding() -> None:
    assert leaf_hash(RECORD) == sha256(b"\x00" + EXPECTED).digest()


def test_decoding_gives_the_record_back() -> None:
    assert decode_leaf(EXPECTED) == RECORD


def test_times_are_instants_whatever_their_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    moved = replace(RECORD, occurred_at=RECORD.occurred_at.astimezone(plus_two))
    assert encode_leaf(moved) == EXPECTED


@pytest.mark.parametrize(
    "change",
    [
        {"case_id": UUID(int=1)},
        {"case_version": 3},
        {"event_type": "Submitted "},
        {"class_version": 2},
        {"event_id": UUID(int=2)},
        {"source": "kafka:intake/0@8"},
        {"occurred_at": RECORD.occurred_at + timedelta(microseconds=1)},
        {"recorded_at": RECORD.recorded_at + timedelta(microseconds=1)},
        {"payload": b'{"a":2}'},
    ],
)
def test_every_field_changes_the_leaf(change: dict[str, object]) -> None:
    assert leaf_hash(replace(RECORD, **change)) != leaf_hash(RECORD)  # type: ignore[arg-type]


def test_field_boundaries_cannot_shift() -> None:
    a = replace(RECORD, event_type="ab", source="c")
    b = replace(RECORD, event_type="a", source="bc")
    assert encode_leaf(a) != encode_leaf(b)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"case_version": -1}, "not a u64"),
        ({"case_version": 1 << 64}, "not a u64"),
        ({"class_version": 1 << 32}, "not a u32"),
        ({"occurred_at": datetime(2026, 1, 1)}, "occurred_at has no time zone"),
    ],
)
def test_unencodable_records_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(LeafEncodingError, match=message):
        encode_leaf(replace(RECORD, **change))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (EXPECTED[:-1], "ends inside its payload"),
        (EXPECTED + b"\x00", "1 bytes follow the payload"),
        (b"\x02" + EXPECTED[1:], "format version 2"),
        (EXPECTED[:10], "ends inside its case id"),
    ],
)
def test_malformed_leaves_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(LeafEncodingError, match=message):
        decode_leaf(data)


def test_chain_zero_is_the_documented_constant() -> None:
    assert sha256(b"casetrack chain v1").digest() == CHAIN_0


def test_each_link_hashes_the_previous_link_and_the_leaf() -> None:
    leaf = leaf_hash(RECORD)
    assert chain(CHAIN_0, leaf) == sha256(CHAIN_0 + leaf).digest()


def test_the_chain_depends_on_order() -> None:
    a, b = leaf_hash(RECORD), leaf_hash(replace(RECORD, case_version=3))
    assert chain(chain(CHAIN_0, a), b) != chain(chain(CHAIN_0, b), a)

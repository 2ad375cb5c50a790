"""Sealing personal values: what a stored event holds, and that nothing opens wrongly."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from pathlib import Path
from uuid import RFC_4122, UUID, uuid4

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.postgres.data_keys import time_ordered_uuid
from adapters.privacy.blind_index import BlindIndex
from adapters.privacy.field_cipher import (
    FieldDecryptError,
    associated_data,
    open_sealed,
    seal,
    subject_of,
)
from adapters.privacy.kek import KekError, LocalKek, local_kek, read_kek
from adapters.privacy.personal_codec import MissingKey, PersonalDataCodec
from domain.personal_data import ERASED

RECEIVED = "domain.case:Case.Received"
LETTER = "domain.case:Case.CorrespondenceSent"
KEY = bytes(range(32))
texts = st.text(min_size=0, max_size=60)


def received_fields() -> dict[str, object]:
    return {
        "application_number": "F000000001",
        "category": "spouse",
        "principal_applicant": {
            "uci": "12345678", "given_name": "Zoë", "family_name": "Tremblay",
            "date_of_birth": "1990-01-02", "email": "zoe@example.org",
        },
        "sponsor": {
            "uci": "87654321", "given_name": "Ana", "family_name": "Ng",
            "date_of_birth": "1988-03-04", "email": None,
        },
        "representative": {"name": "Jo Rep", "email": "jo@rep.example", "membership_id": "R1"},
    }  # fmt: skip


class Keys:
    """A key table in memory: the codec's loader, counting its round trips."""

    def __init__(self) -> None:
        self.keys: dict[UUID, tuple[UUID, str, bytes | None]] = {}
        self.loads = 0

    def new(self, case: UUID, role: str) -> tuple[UUID, bytes]:
        subject, key = uuid4(), os.urandom(32)
        self.keys[subject] = (case, role, key)
        return subject, key

    def destroy(self, subject: UUID) -> None:
        case, role, _ = self.keys[subject]
        self.keys[subject] = (case, role, None)

    def load(self, subjects: set[UUID]) -> Mapping[UUID, tuple[UUID, str, bytes | None]]:
        self.loads += 1
        return {s: self.keys[s] for s in subjects if s in self.keys}


def sealed_received(
    keys: Keys, case: UUID
) -> tuple[dict[str, object], dict[str, tuple[UUID, bytes]]]:
    owners = {r: keys.new(case, r) for r in ("principal_applicant", "sponsor", "representative")}
    state = received_fields()
    PersonalDataCodec(keys.load).seal(state, RECEIVED, case, 1, owners.__getitem__)
    return state, owners


def test_a_sealed_event_holds_no_personal_value_and_opens_to_the_original() -> None:
    keys, case = Keys(), uuid4()
    state, _ = sealed_received(keys, case)
    stored = orjson.dumps(state)
    # (values of 4 bytes and more: shorter ones turn up in random base64 by chance)
    for value in (b"12345678", b"Tremblay", "Zoë".encode(), b"1990-01-02", b"zoe@", b"Jo Rep"):
        assert value not in stored
    assert b"F000000001" in stored and b"spouse" in stored  # the rest stays readable
    assert state["sponsor"]["email"] is None  # type: ignore[index]  # absent, not sealed
    codec = PersonalDataCodec(keys.load)
    parsed = orjson.loads(stored)
    codec.prefetch([stored])
    codec.open(parsed, RECEIVED, case, 1)
    assert parsed == received_fields()
    assert keys.loads == 1  # one round trip for the three subjects


def test_sealing_leaves_the_domain_events_own_dicts_plaintext() -> None:
    keys, case = Keys(), uuid4()
    original = received_fields()
    state = dict(original)
    owners = {r: keys.new(case, r) for r in ("principal_applicant", "sponsor", "representative")}
    PersonalDataCodec(keys.load).seal(state, RECEIVED, case, 1, owners.__getitem__)
    assert original == received_fields()


def test_a_destroyed_key_reads_as_erased_and_the_others_still_open() -> None:
    keys, case = Keys(), uuid4()
    state, owners = sealed_received(keys, case)
    keys.destroy(owners["sponsor"][0])  # crypto-shredded
    parsed = orjson.loads(orjson.dumps(state))
    PersonalDataCodec(keys.load).open(parsed, RECEIVED, case, 1)
    assert parsed["sponsor"] == {  # type: ignore[index]
        "uci": ERASED, "given_name": ERASED, "family_name": ERASED,
        "date_of_birth": ERASED, "email": None,
    }  # fmt: skip
    assert parsed["principal_applicant"]["family_name"] == "Tremblay"  # type: ignore[index]


def test_a_value_moved_to_another_event_or_field_does_not_open() -> None:
    keys, case = Keys(), uuid4()
    state, _ = sealed_received(keys, case)
    codec = PersonalDataCodec(keys.load)
    moved = orjson.loads(orjson.dumps(state))
    with pytest.raises(FieldDecryptError, match="does not open"):
        codec.open(moved, RECEIVED, case, 2)  # another version
    swapped = orjson.loads(orjson.dumps(state))
    pa = swapped["principal_applicant"]
    pa["given_name"], pa["family_name"] = pa["family_name"], pa["given_name"]
    with pytest.raises(FieldDecryptError):
        codec.open(swapped, RECEIVED, case, 1)


def test_a_sealed_value_without_a_key_row_is_an_error_not_an_erasure() -> None:
    keys, case = Keys(), uuid4()
    state, owners = sealed_received(keys, case)
    del keys.keys[owners["sponsor"][0]]
    with pytest.raises(MissingKey):
        PersonalDataCodec(keys.load).open(orjson.loads(orjson.dumps(state)), RECEIVED, case, 1)


def test_correspondence_subjects_are_the_principal_applicants() -> None:
    keys, case = Keys(), uuid4()
    owner = keys.new(case, "principal_applicant")
    asked: list[str] = []

    def key_of(who: str) -> tuple[UUID, bytes]:
        asked.append(who)
        return owner

    state: dict[str, object] = {"subject": "Your medical results, Zoë", "event_type": "x"}
    PersonalDataCodec(keys.load).seal(state, LETTER, case, 7, key_of)
    assert asked == ["principal_applicant"] and "Zoë".encode() not in orjson.dumps(state)
    PersonalDataCodec(keys.load).open(state, LETTER, case, 7)
    assert state["subject"] == "Your medical results, Zoë"


def test_values_stored_before_encryption_read_as_they_are() -> None:
    state = received_fields()
    PersonalDataCodec(Keys().load).open(state, RECEIVED, uuid4(), 1)
    assert state == received_fields()


@given(texts, st.binary(min_size=1, max_size=40), st.integers(0, 2**40))
def test_seal_then_open_gives_the_value_back_and_only_with_its_place(
    value: str, path: bytes, version: int
) -> None:
    subject, case = uuid4(), uuid4()
    where = associated_data(case, version, path.hex())
    token = seal(KEY, subject, value, where)
    assert subject_of(token) == subject
    assert open_sealed(KEY, token, where) == value
    with pytest.raises(FieldDecryptError):
        open_sealed(KEY, token, associated_data(case, version + 1, path.hex()))


@given(texts, st.data())
def test_any_altered_token_or_wrong_key_is_an_error_never_garbage(
    value: str, data: st.DataObject
) -> None:
    where = associated_data(UUID(int=1), 1, "principal_applicant.uci")
    token = seal(KEY, UUID(int=2), value, where)
    with pytest.raises(FieldDecryptError):
        open_sealed(bytes(32), token, where)
    body_start = len("pd1:") + 33
    i = data.draw(st.integers(body_start, len(token) - 1))
    replacement = data.draw(st.sampled_from("AQgw-_=x"))
    altered = token[:i] + replacement + token[i + 1 :]
    if altered != token:
        try:
            opened = open_sealed(KEY, altered, where)
        except FieldDecryptError:
            return
        # base64 can decode two texts to the same bytes (unused low bits): then it is
        # the same ciphertext, and the same value
        assert opened == value


def test_the_same_value_seals_differently_each_time() -> None:
    where = associated_data(UUID(int=1), 1, "x")
    assert seal(KEY, UUID(int=2), "same", where) != seal(KEY, UUID(int=2), "same", where)


def test_a_kek_wraps_and_unwraps_and_refuses_another_keks_wrapping(tmp_path: Path) -> None:
    kek = local_kek(tmp_path / "kek.key")
    assert (tmp_path / "kek.key").stat().st_mode & 0o777 == 0o600
    assert local_kek(tmp_path / "kek.key").key_id == kek.key_id  # made once, then read
    data_key = os.urandom(32)
    assert kek.unwrap(kek.wrap(data_key)) == data_key
    other = LocalKek(os.urandom(32))
    with pytest.raises(KekError, match=kek.key_id):
        kek.unwrap(other.wrap(data_key))
    assert "local:" in repr(kek) and (tmp_path / "kek.key").read_text().strip() not in repr(kek)


def test_a_bad_or_missing_kek_file_is_named_without_its_content(tmp_path: Path) -> None:
    with pytest.raises(KekError, match="no key-encryption key at"):
        read_kek(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.write_text("not hex at all secretvalue")
    with pytest.raises(KekError, match="does not hold a key-encryption key") as raised:
        read_kek(bad)
    assert "secretvalue" not in str(raised.value)


def test_subject_ids_are_version_7_uuids_that_grow_with_time() -> None:
    first = time_ordered_uuid()
    time.sleep(0.002)
    later = [time_ordered_uuid() for _ in range(1000)]
    assert {u.version for u in later} == {7} and all(u.variant == RFC_4122 for u in later)
    assert all(u > first for u in later) and len(set(later)) == 1000


def test_blind_indexes_are_the_documented_hmac_so_stored_ones_keep_matching() -> None:
    """A change to how an index is computed would orphan every stored one: pinned here to
    HMAC-SHA-256(HMAC-SHA-256(secret, label), kind NUL value), first 16 bytes."""
    secret = b"s" * 32
    key = hmac.new(secret, b"casetrack blind index v1", hashlib.sha256).digest()
    index = BlindIndex(secret)
    expected = hmac.new(key, b"uci\x0012345678", hashlib.sha256).digest()[:16]
    assert index.person(" 12345678 ") == expected
    email = hmac.new(key, b"email\x00jo@rep.example", hashlib.sha256).digest()[:16]
    assert index.person("Jo@Rep.Example") == email == index.email("jo@rep.example")

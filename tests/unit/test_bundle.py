"""domain.integrity.bundle: a bundle built from a log verifies offline, and every kind of
tampering with it (stored bytes, hashes, order, proofs, keys, history) is refused by name."""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.integrity import merkle
from domain.integrity.bundle import (
    FORMAT,
    BundleError,
    CaseIdMismatch,
    CaseProof,
    ChainBroken,
    CheckpointRefused,
    ConsistencyFailed,
    ConsistencyProofMissing,
    EventAltered,
    InclusionFailed,
    LeafMismatch,
    MalformedBundle,
    ProvenEvent,
    build_bundle,
    verify_bundle,
)
from domain.integrity.checkpoint import Checkpoint, generate_key, sign_checkpoint
from domain.integrity.leaves import field_digests
from domain.integrity.stored import HashedEvent, StoredRow, hash_events, leaf_record

ORIGIN = "example.org/case-log"
SKEY, VKEY = generate_key(ORIGIN)
OTHER_SKEY, OTHER_VKEY = generate_key(ORIGIN)
NAMESPACE = UUID("0b7c6c7e-4a51-4a8e-9a0c-2f1d8f0b7c11")
NUMBERS = ["F000000001", "F000000002", "F000000003"]
SECRET = "Jane Q. Applicant"  # a payload value no message may quote


def case_id_of(number: str) -> UUID:
    return uuid5(NAMESPACE, number)


def state(case: int, version: int, salt: str = "") -> bytes:
    payload = {
        "event_id": {"_type_": "uuid_hex", "_data_": f"{case:016x}{version:016x}"},
        "source": f"kafka:intake/0@{case * 100 + version}",
        "occurred_at": {"_type_": "datetime_iso", "_data_": "2026-01-02T03:04:05+00:00"},
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-02T03:04:06.123456+00:00"},
        "name": SECRET,
        "salt": salt,
    }
    return json.dumps(payload).encode()


class Log:
    """A log of interleaved cases (NUMBERS' cases and unrelated ones), hashed as the
    recorder hashes it."""

    def __init__(self, versions: int = 5, others: int = 7, salt: str = "") -> None:
        self.rows: list[StoredRow] = []
        for version in range(1, versions + 1):
            for i, number in enumerate(NUMBERS):
                self._add(case_id_of(number), version, state(i, version, salt))
            for j in range(others):
                self._add(uuid5(NAMESPACE, f"other {j}"), version, state(100 + j, version, salt))
        self.hashed = hash_events(self.rows, {}, 0)
        self.leaves = [h.leaf for h in self.hashed]

    def _add(self, case_id: UUID, version: int, payload: bytes) -> None:
        self.rows.append(
            StoredRow(len(self.rows) + 1, case_id, version, "domain.case:Case.Noted", payload)
        )

    def append(self, more: Log) -> Log:
        """This log followed by `more`'s rows as later versions of the same cases."""
        offset = max(r.case_version for r in self.rows)
        grown = copy.copy(self)
        grown.rows = self.rows + [
            StoredRow(len(self.rows) + k + 1, r.case_id, r.case_version + offset, r.topic, r.state)
            for k, r in enumerate(more.rows)
        ]
        grown.hashed = hash_events(grown.rows, {}, 0)
        grown.leaves = [h.leaf for h in grown.hashed]
        return grown

    def note(self, size: int | None = None, skey: str = SKEY) -> str:
        size = len(self.leaves) if size is None else size
        return sign_checkpoint(Checkpoint(ORIGIN, size, merkle.root(self.leaves[:size])), skey)

    def bundle(
        self,
        numbers: list[str] = NUMBERS[:2],
        size: int | None = None,
        since: int | None = None,
        skey: str = SKEY,
    ) -> dict[str, Any]:
        size = len(self.leaves) if size is None else size
        cases = []
        for number in numbers:
            events: list[tuple[StoredRow, HashedEvent]] = [
                (r, h)
                for r, h in zip(self.rows, self.hashed, strict=True)
                if r.case_id == case_id_of(number)
            ]
            covered = [(r, h) for r, h in events if h.leaf_index < size]
            proven = [
                ProvenEvent(r, h, merkle.inclusion_proof(self.leaves[:size], h.leaf_index))
                for r, h in covered
            ]
            cases.append(CaseProof(number, case_id_of(number), proven, len(events) - len(covered)))
        consistency = None
        if since is not None:
            consistency = (since, merkle.consistency_proof(self.leaves[:size], since))
        return build_bundle(self.note(size, skey), cases, consistency)


LOG = Log()


def verify(bundle: Any, older: str | None = None) -> Any:
    return verify_bundle(bundle, VKEY, older, case_id_of=case_id_of)


def refused(
    error: type[BundleError], bundle: Any, older: str | None = None, vkey: str = VKEY
) -> BundleError:
    with pytest.raises(error) as raised:
        verify_bundle(bundle, vkey, older, case_id_of=case_id_of)
    assert SECRET not in str(raised.value)
    return raised.value


def events(bundle: dict[str, Any], case: int = 0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = bundle["cases"][case]["events"]
    return found


def test_a_bundle_verifies_and_says_what_it_covered() -> None:
    bundle = LOG.bundle()
    report = verify(bundle)
    assert report.checkpoint.size == len(LOG.leaves) and report.checkpoint.origin == ORIGIN
    assert [c.application_number for c in report.cases] == NUMBERS[:2]
    assert report.events == 10 and report.uncovered_events == 0
    assert report.consistent_with is None
    assert verify(json.dumps(bundle).encode()).events == 10
    assert verify(json.dumps(bundle)).events == 10


def test_the_bundle_holds_the_stored_bytes_and_hashes_as_documented() -> None:
    bundle = LOG.bundle(numbers=NUMBERS[:1])
    assert bundle["format"] == FORMAT == "casetrack-proof-bundle/1"
    first = events(bundle)[0]
    row, hashed = LOG.rows[0], LOG.hashed[0]
    assert base64.b64decode(first["state"]) == row.state
    assert first["leaf"] == hashed.leaf.hex() and first["chain"] == hashed.chain.hex()
    assert first["leaf_index"] == 0 and first["notification_id"] == 1
    assert first["case_version"] == 1 and first["topic"] == row.topic
    assert len(first["inclusion"]) == len(merkle.inclusion_proof(LOG.leaves, 0))
    assert "consistency" not in bundle


def test_a_changed_byte_of_a_stored_payload_is_named() -> None:
    bundle = LOG.bundle()
    event = events(bundle, 1)[2]
    stored = bytearray(base64.b64decode(event["state"]))
    stored[-3] ^= 1
    event["state"] = base64.b64encode(bytes(stored)).decode()
    error = refused(LeafMismatch, bundle)
    assert isinstance(error, LeafMismatch)
    assert (error.case, error.version) == (NUMBERS[1], 3) and "payload" in error.fields
    assert str(error).startswith(f"case {NUMBERS[1]} version 3:")


def test_a_changed_source_inside_the_payload_names_both_fields() -> None:
    bundle = LOG.bundle()
    event = events(bundle)[0]
    stored = base64.b64decode(event["state"]).replace(b"intake/0@1", b"intake/0@9")
    event["state"] = base64.b64encode(stored).decode()
    error = refused(LeafMismatch, bundle)
    assert isinstance(error, LeafMismatch) and set(error.fields) == {"source", "payload"}


def test_a_changed_topic_is_named() -> None:
    bundle = LOG.bundle()
    events(bundle)[1]["topic"] = "domain.case:Case.Closed"
    error = refused(LeafMismatch, bundle)
    assert isinstance(error, LeafMismatch) and error.fields == ("event type",)


def test_an_event_altered_after_it_was_signed_is_named_so_even_with_its_digests_rewritten() -> None:
    """The bundle's leaf is the one the checkpoint signed (its inclusion proof holds), but
    the stored event no longer gives it: the event changed, not the leaf. With the (unkeyed)
    field digests rewritten to match, no field can be named, but that is still what it says."""
    bundle = LOG.bundle()
    event = events(bundle)[2]
    stored = base64.b64decode(event["state"]).replace(b"intake/0@3", b"intake/0@8")
    event["state"] = base64.b64encode(stored).decode()
    error = refused(EventAltered, bundle)
    assert isinstance(error, EventAltered) and set(error.fields) == {"source", "payload"}
    assert "(the one the checkpoint signed): the event was altered since" in str(error)

    altered = StoredRow(0, case_id_of(NUMBERS[0]), 3, event["topic"], stored)
    event["fields"] = field_digests(leaf_record(altered)).hex()
    error = refused(EventAltered, bundle)
    assert isinstance(error, EventAltered) and error.fields == ()
    assert "its field digests were rewritten to match" in str(error)
    assert "leaf was altered" not in str(error)


def test_an_altered_leaf_is_refused() -> None:
    bundle = LOG.bundle()
    leaf = bytearray(bytes.fromhex(events(bundle)[3]["leaf"]))
    leaf[0] ^= 0x80
    events(bundle)[3]["leaf"] = leaf.hex()
    error = refused(LeafMismatch, bundle)
    assert isinstance(error, LeafMismatch) and error.fields == () and error.version == 4
    assert not isinstance(error, EventAltered) and "the leaf was altered" in str(error)


def test_an_altered_chain_link_is_refused() -> None:
    bundle = LOG.bundle()
    events(bundle)[2]["chain"] = events(bundle)[1]["chain"]
    assert refused(ChainBroken, bundle).version == 3


@pytest.mark.parametrize("dropped", [0, 2, 4])
def test_a_dropped_event_is_refused(dropped: int) -> None:
    bundle = LOG.bundle()
    del events(bundle)[dropped]
    if dropped == 4:  # the last one: the rest is still versions 1..4, as the log signed them
        assert verify(bundle).cases[0].events == 4
        return
    error = refused(ChainBroken, bundle)
    assert (error.case, error.version) == (NUMBERS[0], dropped + 1)
    assert "missing or out of order" in str(error)


def test_reordered_events_are_refused() -> None:
    bundle = LOG.bundle()
    case = events(bundle)
    case[1], case[2] = case[2], case[1]
    assert refused(ChainBroken, bundle).version == 2


def test_renumbered_versions_are_refused() -> None:
    """Two events swapped with their version numbers swapped back: the leaves cover the
    version, so the story cannot be retold in another order."""
    bundle = LOG.bundle()
    case = events(bundle)
    case[1], case[2] = case[2], case[1]
    case[1]["case_version"], case[2]["case_version"] = 2, 3
    error = refused(LeafMismatch, bundle)
    assert isinstance(error, LeafMismatch)
    assert error.version == 2 and error.fields == ("case version",)


def test_an_event_moved_to_another_case_is_refused() -> None:
    bundle = LOG.bundle()
    events(bundle, 1)[2] = events(bundle, 0)[2]
    error = refused(LeafMismatch, bundle)
    assert isinstance(error, LeafMismatch) and error.fields == ("case id",)
    assert error.case == NUMBERS[1]


def test_a_bundle_checked_with_another_key_is_refused() -> None:
    error = refused(CheckpointRefused, LOG.bundle(), vkey=OTHER_VKEY)
    assert "not signed by" in str(error)
    refused(CheckpointRefused, LOG.bundle(skey=OTHER_SKEY))


def test_an_altered_checkpoint_note_is_refused() -> None:
    bundle = LOG.bundle()
    size = len(LOG.leaves)
    bundle["checkpoint"] = bundle["checkpoint"].replace(f"\n{size}\n", f"\n{size + 1}\n")
    assert "does not match" in str(refused(CheckpointRefused, bundle))


@pytest.mark.parametrize(
    "alter",
    [
        lambda proof: proof[:-1],
        lambda proof: [*proof, proof[0]],
        lambda proof: [proof[1], proof[0], *proof[2:]],
        lambda proof: [("0" if proof[0][0] != "0" else "1") + proof[0][1:], *proof[1:]],
    ],
    ids=["shortened", "lengthened", "swapped", "altered"],
)
def test_an_altered_inclusion_proof_is_refused(alter: Callable[[list[str]], list[str]]) -> None:
    bundle = LOG.bundle()
    event = events(bundle)[1]
    event["inclusion"] = alter(event["inclusion"])
    error = refused(InclusionFailed, bundle)
    assert (error.case, error.version) == (NUMBERS[0], 2)


def test_an_altered_leaf_index_is_refused() -> None:
    bundle = LOG.bundle()
    events(bundle)[4]["leaf_index"] += 1
    refused(InclusionFailed, bundle)


def test_events_the_checkpoint_does_not_cover_are_left_out_and_counted() -> None:
    size = 3 * len(NUMBERS) + 3 * 7  # three versions of every case
    bundle = LOG.bundle(size=size)
    report = verify(bundle)
    assert report.checkpoint.size == size
    assert [c.events for c in report.cases] == [3, 3] and report.uncovered_events == 4


def test_an_event_beyond_the_checkpoint_is_refused() -> None:
    size = 3 * len(NUMBERS) + 3 * 7
    bundle = LOG.bundle(size=size)
    events(bundle).append(LOG.bundle()["cases"][0]["events"][3])
    assert "beyond the checkpoint" in str(refused(InclusionFailed, bundle))


def test_an_application_number_of_another_case_is_refused() -> None:
    bundle = LOG.bundle()
    bundle["cases"][0]["application_number"] = NUMBERS[2]
    refused(CaseIdMismatch, bundle)
    assert verify_bundle(bundle, VKEY).events == 10, "without case_id_of, numbers are not checked"


def test_a_case_twice_is_refused() -> None:
    bundle = LOG.bundle(numbers=[NUMBERS[0], NUMBERS[0]])
    assert "twice" in str(refused(MalformedBundle, bundle))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ((), b"not json"),
        (("format",), "casetrack-proof-bundle/2"),
        (("checkpoint",), None),
        (("cases",), {}),
        (("cases", 0, "case_id"), "nope"),
        (("cases", 0, "events"), None),
        (("cases", 0, "uncovered_events"), -1),
        (("cases", 0, "events", 0, "state"), "not base64!"),
        (("cases", 0, "events", 0, "leaf"), "AB" * 32),
        (("cases", 0, "events", 0, "leaf_index"), True),
        (("cases", 0, "events", 0, "inclusion"), "00" * 32),
        (("consistency",), {"from": 10**9, "proof": []}),
        (("consistency",), {"from": 3}),
    ],
)
def test_malformed_bundles_are_refused(path: tuple[Any, ...], value: Any) -> None:
    bundle: Any = LOG.bundle()
    if not path:
        bundle = value
    else:
        target = bundle
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    refused(MalformedBundle, bundle)


GROWN = LOG.append(Log(versions=2, salt="later"))
FIRST = len(LOG.leaves)


def test_a_newer_bundle_extends_the_checkpoint_an_auditor_kept() -> None:
    report = verify(GROWN.bundle(since=FIRST), older=LOG.note())
    assert report.consistent_with == FIRST and report.events == 14
    assert verify(LOG.bundle(), older=LOG.note()).consistent_with == FIRST, "the same checkpoint"


def test_without_the_proof_from_the_kept_size_the_bundle_says_how_to_get_it() -> None:
    error = refused(ConsistencyProofMissing, GROWN.bundle(), older=LOG.note())
    assert f"--since {FIRST}" in str(error)
    refused(ConsistencyProofMissing, GROWN.bundle(since=FIRST - 1), older=LOG.note())


def test_a_kept_checkpoint_newer_than_the_bundle_is_refused() -> None:
    error = refused(ConsistencyFailed, LOG.bundle(), older=GROWN.note())
    assert "larger" in str(error)


def test_a_kept_checkpoint_from_another_history_is_refused() -> None:
    """The same key signed a log whose first events differ (a rewritten history): the
    bundle's checkpoint does not extend the one the auditor kept."""
    rewritten = Log(salt="rewritten")
    refused(ConsistencyFailed, GROWN.bundle(since=FIRST), older=rewritten.note())
    error = refused(ConsistencyFailed, LOG.bundle(), older=rewritten.note())
    assert "different roots" in str(error)


def test_an_altered_consistency_proof_is_refused() -> None:
    bundle = GROWN.bundle(since=FIRST)
    proof = bundle["consistency"]["proof"]
    proof[-1] = proof[0]
    refused(ConsistencyFailed, bundle, older=LOG.note())


def test_a_kept_checkpoint_signed_by_another_key_is_refused() -> None:
    error = refused(CheckpointRefused, GROWN.bundle(since=FIRST), older=LOG.note(skey=OTHER_SKEY))
    assert "older checkpoint" in str(error)


def test_a_kept_checkpoint_of_another_log_is_refused() -> None:
    """Both keys accepted, but they sign two logs (two origins): their trees are not
    compared."""
    skey, vkey = generate_key("elsewhere.example/log")
    note = sign_checkpoint(Checkpoint("elsewhere.example/log", FIRST, LOG.leaves[0]), skey)
    with pytest.raises(ConsistencyFailed) as error:
        verify_bundle(LOG.bundle(), [VKEY, vkey], note)
    assert "is for log 'elsewhere.example/log'" in str(error.value)


def test_a_checkpoint_whose_origin_is_not_its_keys_name_is_refused() -> None:
    """A key signs one log, whose name it bears: a note of another log signed by the same
    key (the key reused, or a note made up by its holder) is not this log's checkpoint."""
    skey, vkey = generate_key("elsewhere.example/log")
    other = sign_checkpoint(Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT), skey)
    error = refused(CheckpointRefused, build_bundle(other, [], None), vkey=vkey)
    assert "not 'elsewhere.example/log'" in str(error)
    note = sign_checkpoint(Checkpoint("elsewhere.example/log", FIRST, merkle.root(LOG.leaves)),
                           SKEY)  # fmt: skip
    error = refused(CheckpointRefused, LOG.bundle(), older=note)
    assert "the older checkpoint" in str(error) and f"not {ORIGIN!r}" in str(error)


def test_after_a_key_rotation_both_keys_verify_a_bundle_and_its_consistency() -> None:
    """The older checkpoint signed by the old key, the bundle's by the new one (same log
    name): with both keys accepted the bundle proves it extends the older one."""
    bundle = GROWN.bundle(since=FIRST)
    older = LOG.note(skey=OTHER_SKEY)
    report = verify_bundle(bundle, [OTHER_VKEY, VKEY], older, case_id_of=case_id_of)
    assert report.consistent_with == FIRST
    assert "older checkpoint" in str(refused(CheckpointRefused, bundle, older))
    assert "bundle's checkpoint" in str(refused(CheckpointRefused, bundle, older, OTHER_VKEY))


@given(st.data())
def test_any_single_alteration_of_an_event_is_refused(data: st.DataObject) -> None:
    bundle = LOG.bundle()
    case = data.draw(st.sampled_from(bundle["cases"]))
    event = data.draw(st.sampled_from(case["events"]))
    key = data.draw(
        st.sampled_from(["state", "leaf", "chain", "inclusion", "leaf_index", "case_version"])
    )
    if key == "state":
        stored = bytearray(base64.b64decode(event["state"]))
        stored[data.draw(st.integers(0, len(stored) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        event["state"] = base64.b64encode(bytes(stored)).decode()
    elif key in ("leaf", "chain"):
        digest = bytearray(bytes.fromhex(event[key]))
        digest[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
        event[key] = digest.hex()
    elif key == "inclusion":
        i = data.draw(st.integers(0, len(event["inclusion"]) - 1))
        digest = bytearray(bytes.fromhex(event["inclusion"][i]))
        digest[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
        event["inclusion"][i] = digest.hex()
    else:
        event[key] += data.draw(st.sampled_from([-1, 1, 2]))
    with pytest.raises(BundleError):
        verify(bundle)


def test_an_auditor_verifies_with_a_copy_of_domain_integrity_alone(tmp_path: Path) -> None:
    """The package copied on its own (no casetrack, no orjson needed) checks a bundle."""
    package = Path(__file__).resolve().parents[2] / "domain" / "integrity"
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "__init__.py").write_text("")
    shutil.copytree(package, tmp_path / "domain" / "integrity")
    (tmp_path / "bundle.json").write_text(json.dumps(LOG.bundle()))
    code = (
        "import sys, json; sys.modules['orjson'] = None;"
        "from domain.integrity.bundle import verify_bundle;"
        "import domain; assert domain.__file__.startswith(sys.argv[2]), domain.__file__;"
        "r = verify_bundle(open('bundle.json', 'rb').read(), sys.argv[1]);"
        "heavy = {'eventsourcing', 'psycopg', 'pydantic', 'adapters', 'projections', 'consumers'};"
        "print(r.events, sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, VKEY, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10", "[]"]


def test_json_nested_too_deeply_is_a_malformed_bundle() -> None:
    """The standard library's parser runs out of stack on deep nesting (RecursionError):
    that is bad input, refused like any other."""
    deep = b'{"format": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    assert "nested too deeply" in str(refused(MalformedBundle, deep))
    assert "nested too deeply" in str(refused(MalformedBundle, deep.decode()))

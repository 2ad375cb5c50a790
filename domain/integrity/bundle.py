"""Proof bundles: a case's stored events with what an auditor needs to check them offline.

A bundle is one JSON object. Anyone holding the log's public (verifier) key checks it with
`verify_bundle`, without casetrack, its database or its configuration: this module needs the
standard library and the rest of domain/integrity only (and `cryptography` for the note).

Format "casetrack-proof-bundle/1" (hashes are lowercase hex, 64 digits; stored bytes are
standard base64 with padding)::

    {
      "format": "casetrack-proof-bundle/1",
      "checkpoint": "<the signed checkpoint note, verbatim>",
      "consistency": {"from": 120, "proof": ["<hex>", ...]},      (only when asked for)
      "cases": [
        {
          "application_number": "F123456789",                     (or null)
          "case_id": "<uuid>",
          "uncovered_events": 0,
          "events": [
            {
              "leaf_index": 17,            its place in the log's Merkle tree
              "notification_id": 18,       its row in the events table (not hashed)
              "case_version": 1,
              "topic": "<event type, as stored>",
              "state": "<base64 of the stored payload bytes, exactly>",
              "leaf": "<hex>",             the leaf hash (domain/integrity/leaves.py)
              "chain": "<hex>",            the case's chain link after this event
              "fields": "<hex>",           per-field digests: only to name a changed field
              "inclusion": ["<hex>", ...]  the leaf's audit path in the checkpoint's tree
            }, ...
          ]
        }, ...
      ]
    }

What `verify_bundle` checks, and so what a bundle proves:

- the checkpoint note is signed by one of the verifier keys given (several after a key
  rotation), and its origin line is that key's name (the log the key signs for);
- each event's leaf is recomputed from its stored columns (case id, version, topic, state):
  a changed byte anywhere gives another leaf;
- a case's events are versions 1..n in order with no gap, in increasing leaf order, and
  their chain links follow from CHAIN_0 (a case's whole history is in the bundle);
- each leaf is at its leaf index in the checkpoint's tree (RFC 6962 inclusion proof), so the
  events are those the log had signed, not a copy made for the auditor;
- with an older checkpoint the auditor kept (signed by one of the keys, for the same log:
  the same origin), that the bundle's checkpoint extends it (RFC 6962 consistency proof):
  the log was only appended to since. The two may be signed by different keys: a key
  rotation does not change the tree.

Events that the log stored after its latest checkpoint are not in a bundle (no signed tree
covers them yet): `uncovered_events` counts them; a newer checkpoint covers them. A bundle
proves that the events it holds are a case's versions 1..n as the log signed them; it cannot
prove that no version n+1 exists (an exporter could leave the last ones out): that takes the
whole log (`casetrack audit verify`), or a later bundle whose checkpoint extends this one.

Errors are BundleError subclasses naming the case, the version and what failed; they never
quote a payload. When an event's recomputed leaf differs from the bundle's, the bundle's leaf
is looked for in the checkpoint's tree: there, the event was altered after it was signed
(EventAltered, the changed fields named by the field digests, which are not keyed and so
only name, never prove); not there, the leaf itself is not what the log signed.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.integrity import merkle
from domain.integrity.checkpoint import Checkpoint, NoteError, verify_checkpoint_any
from domain.integrity.leaves import CHAIN_0, chain, changed_fields, leaf_and_digests
from domain.integrity.stored import HashedEvent, StoredRow, leaf_record

FORMAT = "casetrack-proof-bundle/1"
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


class BundleError(ValueError):
    """A bundle that does not prove what it claims. `case` names the case (its application
    number when the bundle gives one, else its id), `version` the event; either may be None."""

    def __init__(self, problem: str, case: str | None = None, version: int | None = None):
        self.problem = problem
        self.case = case
        self.version = version
        where = " ".join(
            part
            for part in (
                f"case {case}" if case is not None else "",
                f"version {version}" if version is not None else "",
            )
            if part
        )
        super().__init__(f"{where}: {problem}" if where else problem)


class MalformedBundle(BundleError):
    """Not a bundle of this format: bad JSON, a missing or mistyped field, bad hex or base64."""


class CheckpointRefused(BundleError):
    """A checkpoint note (the bundle's, or the older one given) that the key does not verify."""


class CaseIdMismatch(BundleError):
    """An application number that does not map to the case id beside it."""


class LeafMismatch(BundleError):
    """An event whose stored columns no longer give its leaf. `fields` names the fields that
    differ from the bundle's field digests (empty when only the leaf itself was changed)."""

    def __init__(self, problem: str, case: str, version: int, fields: Sequence[str]):
        super().__init__(problem, case, version)
        self.fields = tuple(fields)


class EventAltered(LeafMismatch):
    """An event whose leaf is the one the checkpoint signed (its inclusion proof holds) but
    whose stored columns no longer give it: the event was altered after it was signed.
    `fields` is empty when the field digests were rewritten to match the altered event."""


class ChainBroken(BundleError):
    """A case's events out of order, with a gap, or whose chain link does not follow."""


class InclusionFailed(BundleError):
    """A leaf that its inclusion proof does not place in the checkpoint's tree."""


class ConsistencyFailed(BundleError):
    """The bundle's checkpoint does not extend the older checkpoint given."""


class ConsistencyProofMissing(ConsistencyFailed):
    """The bundle holds no consistency proof from the older checkpoint's size."""


@dataclass(frozen=True)
class ProvenEvent:
    """One event as an exporter has it: the stored row, its event_hashes row and its
    inclusion proof in the checkpoint's tree."""

    row: StoredRow
    hashed: HashedEvent
    inclusion: Sequence[bytes]


@dataclass(frozen=True)
class CaseProof:
    """One case of a bundle: its events in version order, and how many newer events the
    checkpoint does not cover yet (left out)."""

    application_number: str | None
    case_id: UUID
    events: Sequence[ProvenEvent]
    uncovered_events: int = 0


@dataclass(frozen=True)
class CaseReport:
    application_number: str | None
    case_id: UUID
    events: int
    uncovered_events: int


@dataclass(frozen=True)
class BundleReport:
    """What a bundle proved: the checkpoint, each case's verified events, and the size of
    the older checkpoint it was proved consistent with (None when none was given)."""

    checkpoint: Checkpoint
    cases: tuple[CaseReport, ...]
    consistent_with: int | None

    @property
    def events(self) -> int:
        return sum(c.events for c in self.cases)

    @property
    def uncovered_events(self) -> int:
        return sum(c.uncovered_events for c in self.cases)


def build_bundle(
    note: str,
    cases: Sequence[CaseProof],
    consistency: tuple[int, Sequence[bytes]] | None = None,
) -> dict[str, Any]:
    """The bundle of `cases` under the checkpoint `note`, with the consistency proof from an
    older size when given as (size, proof). Pure: it checks nothing but that each event's
    row and hashes are the same event."""
    for case in cases:
        for event in case.events:
            row, hashed = event.row, event.hashed
            if (row.notification_id, row.case_id, row.case_version) != (
                hashed.notification_id,
                hashed.case_id,
                hashed.case_version,
            ):
                raise ValueError("an event's row and its hashes are not the same event")
    bundle: dict[str, Any] = {"format": FORMAT, "checkpoint": note}
    if consistency is not None:
        size, proof = consistency
        bundle["consistency"] = {"from": size, "proof": [h.hex() for h in proof]}
    bundle["cases"] = [
        {
            "application_number": case.application_number,
            "case_id": str(case.case_id),
            "uncovered_events": case.uncovered_events,
            "events": [_event(e) for e in case.events],
        }
        for case in cases
    ]
    return bundle


def _event(event: ProvenEvent) -> dict[str, Any]:
    return {
        "leaf_index": event.hashed.leaf_index,
        "notification_id": event.row.notification_id,
        "case_version": event.row.case_version,
        "topic": event.row.topic,
        "state": base64.b64encode(event.row.state).decode(),
        "leaf": event.hashed.leaf.hex(),
        "chain": event.hashed.chain.hex(),
        "fields": event.hashed.fields.hex(),
        "inclusion": [h.hex() for h in event.inclusion],
    }


def verify_bundle(
    bundle: Mapping[str, Any] | bytes | str,
    vkeys: str | Sequence[str],
    older_checkpoint: str | None = None,
    case_id_of: Callable[[str], UUID] | None = None,
) -> BundleReport:
    """Check everything `bundle` claims (see the module docstring) against the verifier key
    or keys `vkeys` (a note verifies when one of them signed it) and, when given, the older
    checkpoint note an auditor kept; a BundleError names the first thing that fails.
    `case_id_of` maps an application number to its case id (casetrack passes
    domain.application_number.case_id) to check the numbers too."""
    keys = [vkeys] if isinstance(vkeys, str) else list(vkeys)
    if not keys:
        raise ValueError("no verifier key to check the bundle with")
    data = _parse(bundle)
    if data.get("format") != FORMAT:
        raise MalformedBundle(f"the bundle's format is not {FORMAT!r}")
    note = data.get("checkpoint")
    if not isinstance(note, str):
        raise MalformedBundle("the bundle has no checkpoint note")
    try:
        checkpoint = verify_checkpoint_any(note, keys)
    except NoteError as error:
        raise CheckpointRefused(f"the bundle's checkpoint: {error}") from None
    consistency = _consistency(data.get("consistency"), checkpoint.size)
    cases = data.get("cases")
    if not isinstance(cases, list):
        raise MalformedBundle("the bundle has no list of cases")
    reports: list[CaseReport] = []
    seen: set[UUID] = set()
    for i, case in enumerate(cases):
        report = _verify_case(case, i, checkpoint, case_id_of)
        if report.case_id in seen:
            raise MalformedBundle("the case is in the bundle twice", _name(report))
        seen.add(report.case_id)
        reports.append(report)
    consistent_with = None
    if older_checkpoint is not None:
        consistent_with = _check_older(older_checkpoint, keys, checkpoint, consistency)
    return BundleReport(checkpoint, tuple(reports), consistent_with)


def _parse(bundle: Mapping[str, Any] | bytes | str) -> Mapping[str, Any]:
    if isinstance(bundle, bytes | str):
        try:
            bundle = json.loads(bundle)
        except ValueError:
            raise MalformedBundle("the bundle is not JSON") from None
        except RecursionError:  # the parser's stack, not ours: a hostile input
            raise MalformedBundle("the bundle is not JSON (nested too deeply)") from None
    if not isinstance(bundle, Mapping):
        raise MalformedBundle("the bundle is not a JSON object")
    return bundle


def _consistency(value: object, size: int) -> tuple[int, list[bytes]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MalformedBundle("the bundle's consistency proof is not an object")
    fields = _Fields(value, what="the consistency proof's ")
    old = fields.whole("from")
    if old > size:
        raise MalformedBundle(
            f"the consistency proof is from size {old}, beyond the checkpoint's size {size}"
        )
    return old, fields.hashes("proof")


def _verify_case(
    value: object,
    position: int,
    checkpoint: Checkpoint,
    case_id_of: Callable[[str], UUID] | None,
) -> CaseReport:
    if not isinstance(value, Mapping):
        raise MalformedBundle(f"case {position} of the bundle is not an object")
    number = value.get("application_number")
    if number is not None and not isinstance(number, str):
        raise MalformedBundle(f"case {position}'s application number is not a string")
    try:
        case_id = UUID(str(value.get("case_id")))
    except ValueError:
        raise MalformedBundle(f"case {position}'s case id is not a UUID") from None
    name = number if number is not None else str(case_id)
    if number is not None and case_id_of is not None:
        try:
            expected = case_id_of(number)
        except ValueError:
            raise CaseIdMismatch("this is not an application number", name) from None
        if expected != case_id:
            raise CaseIdMismatch(f"the number's case id is {expected}, not {case_id}", name)
    fields = _Fields(value, name)
    uncovered = fields.whole("uncovered_events")
    events = value.get("events")
    if not isinstance(events, list):
        raise MalformedBundle("the case has no list of events", name)
    link = CHAIN_0
    last_index = -1
    for i, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise MalformedBundle(f"event {i} of the case is not an object", name)
        link, last_index = _verify_event(
            _Fields(event, name, i + 1), case_id, link, last_index, checkpoint
        )
    return CaseReport(number, case_id, len(events), uncovered)


def _verify_event(
    event: _Fields,
    case_id: UUID,
    previous_link: bytes,
    previous_index: int,
    checkpoint: Checkpoint,
) -> tuple[bytes, int]:
    """Check the case's event that must be version `event.version`; its chain link and leaf
    index."""
    name, version = event.case, event.version
    assert name is not None and version is not None
    found = event.whole("case_version")
    if found != version:
        raise ChainBroken(
            f"the event in place {version} is version {found}: versions are missing or out of"
            " order (a bundle holds a case's whole history, in order)",
            name,
            version,
        )
    leaf_index = event.whole("leaf_index")
    if leaf_index <= previous_index:
        raise ChainBroken(
            f"leaf index {leaf_index} does not follow the previous version's {previous_index}",
            name,
            version,
        )
    row = StoredRow(
        notification_id=event.whole("notification_id"),
        case_id=case_id,
        case_version=version,
        topic=event.text("topic"),
        state=event.base64("state"),
    )
    record = leaf_record(row)
    leaf, _ = leaf_and_digests(record)
    proof = event.hashes("inclusion")
    given = event.hash("leaf")
    if leaf != given:
        changed = changed_fields(record, event.hex("fields"))
        named = ", ".join(changed)
        if _included(given, leaf_index, checkpoint, proof):
            raise EventAltered(
                "the stored event no longer gives its leaf (the one the checkpoint signed): the"
                " event was altered since; "
                + (
                    f"changed {named}"
                    if changed
                    else "its field digests were rewritten to match, so the changed field"
                    " cannot be named"
                ),
                name,
                version,
                changed,
            )
        problem = (
            f"the stored event no longer gives its leaf, which is not in the checkpoint's"
            f" tree either: changed {named}"
            if changed
            else "the leaf is not the one the stored event gives, nor in the checkpoint's tree"
            " (the leaf was altered)"
        )
        raise LeafMismatch(problem, name, version, changed)
    link = chain(previous_link, leaf)
    if link != event.hash("chain"):
        raise ChainBroken(
            "the chain link does not follow from the previous version's link and this leaf",
            name,
            version,
        )
    if leaf_index >= checkpoint.size:
        raise InclusionFailed(
            f"leaf {leaf_index} is beyond the checkpoint's tree of size {checkpoint.size}",
            name,
            version,
        )
    try:
        merkle.verify_inclusion(leaf, leaf_index, checkpoint.size, proof, checkpoint.root)
    except merkle.ProofError as error:
        raise InclusionFailed(f"the inclusion proof fails: {error}", name, version) from None
    return link, leaf_index


def _included(leaf: bytes, index: int, checkpoint: Checkpoint, proof: Sequence[bytes]) -> bool:
    """Whether `proof` places `leaf` at `index` in the checkpoint's tree."""
    try:
        merkle.verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root)
    except merkle.ProofError:
        return False
    return True


def _check_older(
    note: str,
    vkeys: Sequence[str],
    checkpoint: Checkpoint,
    consistency: tuple[int, list[bytes]] | None,
) -> int:
    """The older checkpoint's size once the bundle's checkpoint is proved to extend it."""
    try:
        older = verify_checkpoint_any(note, vkeys)
    except NoteError as error:
        raise CheckpointRefused(f"the older checkpoint: {error}") from None
    if older.origin != checkpoint.origin:
        raise ConsistencyFailed(
            f"the older checkpoint is for log {older.origin!r}, the bundle's for"
            f" {checkpoint.origin!r}: only checkpoints of one log are compared (a key"
            " rotated under a new --name signs under that name: keep the name when rotating)"
        )
    if older.size > checkpoint.size:
        raise ConsistencyFailed(
            f"the older checkpoint (size {older.size}) is larger than the bundle's (size"
            f" {checkpoint.size}): ask for a bundle under a newer checkpoint"
        )
    proof: list[bytes] = []
    if 0 < older.size < checkpoint.size:
        if consistency is None or consistency[0] != older.size:
            raise ConsistencyProofMissing(
                f"the bundle holds no consistency proof from size {older.size}: export it with"
                f" `--since {older.size}` (or ?since={older.size})"
            )
        proof = consistency[1]
    try:
        merkle.verify_consistency(older.size, checkpoint.size, older.root, checkpoint.root, proof)
    except merkle.ProofError as error:
        raise ConsistencyFailed(
            f"the bundle's checkpoint (size {checkpoint.size}) does not extend the older one"
            f" (size {older.size}): {error}"
        ) from None
    return older.size


def _name(report: CaseReport) -> str:
    return report.application_number or str(report.case_id)


class _Fields:
    """Typed reads of one JSON object of the bundle; a missing or mistyped field is a
    MalformedBundle naming the case and version it belongs to."""

    def __init__(
        self,
        value: Mapping[str, Any],
        case: str | None = None,
        version: int | None = None,
        what: str = "",
    ) -> None:
        self.value = value
        self.case = case
        self.version = version
        self.what = what

    def _refuse(self, key: str, expected: str) -> MalformedBundle:
        return MalformedBundle(f"{self.what}{key} is not {expected}", self.case, self.version)

    def whole(self, key: str) -> int:
        found = self.value.get(key)
        if type(found) is not int or found < 0:
            raise self._refuse(key, "a whole number")
        return found

    def text(self, key: str) -> str:
        found = self.value.get(key)
        if not isinstance(found, str):
            raise self._refuse(key, "a string")
        return found

    def hash(self, key: str) -> bytes:
        found = self.value.get(key)
        if not isinstance(found, str) or not _HEX_HASH.fullmatch(found):
            raise self._refuse(key, "a hash (64 lowercase hex digits)")
        return bytes.fromhex(found)

    def hex(self, key: str) -> bytes:
        found = self.value.get(key)
        if not isinstance(found, str) or not _HEX.fullmatch(found):
            raise self._refuse(key, "lowercase hex")
        return bytes.fromhex(found)

    def hashes(self, key: str) -> list[bytes]:
        found = self.value.get(key)
        if not isinstance(found, list) or not all(
            isinstance(h, str) and _HEX_HASH.fullmatch(h) for h in found
        ):
            raise self._refuse(key, "a list of hashes (64 lowercase hex digits)")
        return [bytes.fromhex(h) for h in found]

    def base64(self, key: str) -> bytes:
        found = self.value.get(key)
        if isinstance(found, str):
            try:
                return base64.b64decode(found, validate=True)
            except ValueError:  # binascii.Error is one
                pass
        raise self._refuse(key, "base64")

"""Proof bundles from the store: `casetrack audit export` and GET /v1/audit/.../proof.

A bundle (domain/integrity/bundle.py) holds cases' events under the latest signed
checkpoint. Its inclusion proofs are for that checkpoint's tree, so only the events that
tree covers (leaf index below its size) can be in it. Exporting never signs: it is a read,
the same from the command line and from the API (which holds no signing key). Events
stored after the latest checkpoint are left out and counted as the case's
"uncovered_events"; `casetrack audit checkpoint` (or the projector daemon, every
CASETRACK_CHECKPOINT_SECONDS) signs a checkpoint that covers them.

Coherence: checkpoints are never changed once kept and the log only grows, so reading the
latest checkpoint first and each case's events after gives a bundle whose every event is
in that checkpoint's tree; events that arrive in between are past its size, uncovered.

The tree's size is the one the signed note holds (the row's columns are not signed). When
the log no longer holds the leaves that tree covers (events or hashes deleted since it was
signed), no proof of it can be made: LogAltered says so, and `casetrack audit verify`
names the spot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.postgres.checkpoints import StoredCheckpoint
from adapters.postgres.integrity_log import IntegrityLog
from domain import application_number as numbers
from domain.integrity.bundle import CaseProof, ProvenEvent, build_bundle
from domain.integrity.checkpoint import Checkpoint, NoteError, parse_checkpoint, parse_note
from domain.integrity.merkle import ProofError


class ExportError(RuntimeError):
    """A bundle that cannot be made; the message says why and what to do."""


class NoCheckpoint(ExportError):
    def __init__(self) -> None:
        super().__init__("no checkpoint yet: run `casetrack audit checkpoint`")


class UnknownApplication(ExportError):
    def __init__(self, number: str) -> None:
        super().__init__(f"no application {number}")
        self.number = number


class LogAltered(ExportError):
    """The log no longer matches its latest checkpoint: the leaves that checkpoint's tree
    covers are not all there, or its stored note is not a checkpoint. A conflict between
    the stored data and what was signed, not bad input; `size` is the checkpoint's."""

    def __init__(self, size: int, problem: str | None = None) -> None:
        super().__init__(
            f"{problem or f'the log no longer holds the events checkpoint {size} covers'}:"
            " run `casetrack audit verify`"
        )
        self.size = size


def signed_checkpoint(stored: StoredCheckpoint) -> Checkpoint:
    """The checkpoint a stored note holds (its signature is the auditor's to check: the
    API holds no key); LogAltered when the note is not a checkpoint."""
    try:
        return parse_checkpoint(parse_note(stored.note).text)
    except NoteError:
        raise LogAltered(
            stored.size,
            f"the stored checkpoint at size {stored.size} is not a checkpoint note: the"
            " checkpoints table was altered",
        ) from None


class SinceBeyondCheckpoint(ExportError):
    def __init__(self, since: int, size: int) -> None:
        super().__init__(
            f"--since {since} is beyond the latest checkpoint (size {size}): a consistency"
            " proof goes from an older, smaller tree to it"
        )
        self.since = since
        self.size = size


def export_bundle(
    log: IntegrityLog, application_numbers: Sequence[str], since: int | None = None
) -> dict[str, Any]:
    """The bundle of these applications under the latest checkpoint, with the consistency
    proof from size `since` when given. InvalidApplicationNumber for a malformed number;
    ExportError for no checkpoint, an unknown number, a `since` beyond the checkpoint, or
    a log that no longer holds what the checkpoint covers (LogAltered)."""
    wanted = list(dict.fromkeys(application_numbers))
    ids = [numbers.case_id(n) for n in wanted]  # InvalidApplicationNumber first
    latest = log.latest()
    if latest is None:
        raise NoCheckpoint()
    size = signed_checkpoint(latest).size
    if since is not None and not 0 <= since <= size:
        raise SinceBeyondCheckpoint(since, size)
    found = []
    for number, case_id in zip(wanted, ids, strict=True):
        events = log.case_events(case_id)
        if not events:
            raise UnknownApplication(number)
        covered = [(row, hashed) for row, hashed in events if hashed.leaf_index < size]
        found.append((number, case_id, covered, len(events) - len(covered)))
    indexes = [hashed.leaf_index for *_, covered, _ in found for _, hashed in covered]
    try:
        proofs = iter(log.inclusion_proofs(indexes, size))
        consistency = None if since is None else (since, log.consistency_proof(since, size))
    except ProofError:
        raise LogAltered(size) from None
    cases = [
        CaseProof(
            number,
            case_id,
            [ProvenEvent(row, hashed, next(proofs)) for row, hashed in covered],
            uncovered,
        )
        for number, case_id, covered, uncovered in found
    ]
    return build_bundle(latest.note, cases, consistency)

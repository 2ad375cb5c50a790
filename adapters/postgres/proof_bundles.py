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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.postgres.integrity_log import IntegrityLog
from domain import application_number as numbers
from domain.integrity.bundle import CaseProof, ProvenEvent, build_bundle


class ExportError(RuntimeError):
    """A bundle that cannot be made; the message says why and what to do."""


class NoCheckpoint(ExportError):
    def __init__(self) -> None:
        super().__init__("no checkpoint yet: run `casetrack audit checkpoint`")


class UnknownApplication(ExportError):
    def __init__(self, number: str) -> None:
        super().__init__(f"no application {number}")
        self.number = number


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
    ExportError for no checkpoint, an unknown number or a `since` beyond the checkpoint."""
    wanted = list(dict.fromkeys(application_numbers))
    ids = [numbers.case_id(n) for n in wanted]  # InvalidApplicationNumber first
    latest = log.latest()
    if latest is None:
        raise NoCheckpoint()
    if since is not None and not 0 <= since <= latest.size:
        raise SinceBeyondCheckpoint(since, latest.size)
    found = []
    for number, case_id in zip(wanted, ids, strict=True):
        events = log.case_events(case_id)
        if not events:
            raise UnknownApplication(number)
        covered = [(row, hashed) for row, hashed in events if hashed.leaf_index < latest.size]
        found.append((number, case_id, covered, len(events) - len(covered)))
    indexes = [hashed.leaf_index for *_, covered, _ in found for _, hashed in covered]
    proofs = iter(log.inclusion_proofs(indexes, latest.size))
    cases = [
        CaseProof(
            number,
            case_id,
            [ProvenEvent(row, hashed, next(proofs)) for row, hashed in covered],
            uncovered,
        )
        for number, case_id, covered, uncovered in found
    ]
    consistency = None
    if since is not None:
        consistency = (since, log.consistency_proof(since, latest.size))
    return build_bundle(latest.note, cases, consistency)

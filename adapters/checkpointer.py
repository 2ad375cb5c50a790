"""The projector daemon's checkpoints (`casetrack project`, every CASETRACK_CHECKPOINT_SECONDS
through adapters.chores.Every): sign one if the log grew.

A refusal (the log no longer yields an earlier root) is logged as an error each time and
never stops the projections: the views must keep serving while an operator runs
`casetrack audit verify`. While `db init` rewrites the log into a new epoch, signing waits.
"""

from __future__ import annotations

import structlog

from adapters.postgres.integrity_log import IntegrityLog, LogBeingRewritten, LogRewritten

log = structlog.get_logger(__name__)


def sign_if_grown(integrity: IntegrityLog, signer: str) -> None:
    try:
        checkpoint, new = integrity.checkpoint(signer)
    except LogRewritten as error:
        log.error("checkpoint refused: the log was altered", reason=str(error))
        return
    except LogBeingRewritten as error:
        log.warning("checkpoint postponed", reason=str(error))
        return
    if new:
        log.info("checkpoint signed", size=checkpoint.size, root=checkpoint.root.hex())

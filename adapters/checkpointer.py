"""Periodic checkpoints for long-running processes (`casetrack project`).

Every ``interval`` seconds, if the log grew, sign a checkpoint. A refusal (the log no longer
yields an earlier root) is logged as an error each time and never stops the projections:
the views must keep serving while an operator runs `casetrack audit verify`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from adapters.postgres.integrity_log import IntegrityLog, LogBeingRewritten, LogRewritten

log = structlog.get_logger(__name__)


class PeriodicCheckpoint:
    """Call it often (after each catch-up); it signs at most once per ``interval``."""

    def __init__(
        self,
        integrity: IntegrityLog,
        signer: str,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.integrity = integrity
        self.signer = signer
        self.interval = interval
        self.clock = clock
        self._due = clock()

    def __call__(self) -> None:
        now = self.clock()
        if now < self._due:
            return
        self._due = now + self.interval
        try:
            checkpoint, new = self.integrity.checkpoint(self.signer)
        except LogRewritten as error:
            log.error("checkpoint refused: the log was altered", reason=str(error))
            return
        except LogBeingRewritten as error:
            log.warning("checkpoint postponed", reason=str(error))
            return
        if new:
            log.info("checkpoint signed", size=checkpoint.size, root=checkpoint.root.hex())

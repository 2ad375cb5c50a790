"""Chores a long-running process does now and then between its real work: ``Every`` runs
one at most once per interval, when it is called (after each catch-up of `casetrack
project`), so a chore needs no thread or timer of its own."""

from __future__ import annotations

import time
from collections.abc import Callable


class Every:
    """Call it often; it runs ``chore`` at its first call, then at most once per
    ``interval`` seconds (the next run is due an interval after the last one began)."""

    def __init__(
        self,
        interval: float,
        chore: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.chore = chore
        self.clock = clock
        self._due = clock()

    def __call__(self) -> None:
        now = self.clock()
        if now < self._due:
            return
        self._due = now + self.interval
        self.chore()

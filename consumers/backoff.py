"""How long to wait before retrying something that keeps failing.

The pause doubles with each failure, up to a cap, and starts over only after
progress is made (``succeeded``) or after a quiet spell with no failure: getting
as far as the same failure again is no progress, so it earns no shorter pause.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


def _jitter() -> float:
    """Members retrying together drift apart instead of hitting the broker or database as one."""
    return random.uniform(0.8, 1.2)


class Backoff:
    """Pauses of ``initial`` seconds doubling to ``maximum``, each times ``jitter()``."""

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        quiet: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = _jitter,
    ) -> None:
        self.initial, self.maximum, self.quiet = initial, maximum, quiet
        self._clock, self._jitter = clock, jitter
        self._delay = initial
        self._last_failure: float | None = None

    def failed(self) -> float:
        """A failure now: the pause before the next attempt."""
        now = self._clock()
        if self._last_failure is not None and now - self._last_failure > self.quiet:
            self._delay = self.initial  # an old failure says nothing about this one
        self._last_failure = now
        delay = self._delay * self._jitter()
        self._delay = min(self._delay * 2, self.maximum)
        return delay

    def succeeded(self) -> None:
        """Progress: the next failure is paused for ``initial`` again."""
        self._delay = self.initial
        self._last_failure = None

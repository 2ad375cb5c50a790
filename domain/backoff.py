"""Growing delays: between sign-in attempts (``Backoff``), and before retrying
something that keeps failing (``RetryBackoff``).

A guess costs more the more guesses came before it from the same place, and
an honest user's old typos are forgotten: each attempt adds 1 to a score that
halves every ``half_life``; after ``free`` attempts the next one must wait
``base``, doubled per further attempt, up to ``cap``. Nothing ever locks: once the
wait is over a guess is checked again.

A retry (the database or the broker is away) waits a pause that doubles with each
failure, up to a cap, and starts over only after progress is made (``succeeded``)
or after a quiet spell with no failure: getting as far as the same failure again
is no progress, so it earns no shorter pause.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Backoff:
    free: int = 5
    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=15)
    half_life: timedelta = timedelta(minutes=15)

    def decayed(self, score: float, elapsed: timedelta) -> float:
        """The score after ``elapsed`` without attempts."""
        seconds = max(0.0, elapsed.total_seconds())
        # Annotated: typeshed makes float ** float Any (a negative base would give a complex).
        kept: float = 0.5 ** (seconds / self.half_life.total_seconds())
        return score * kept

    def wait_after(self, score: float) -> timedelta:
        """How long the next attempt must wait once the score is ``score``: nothing while
        fewer than ``free`` attempts count, then ``base``, doubling per attempt."""
        extra = score - self.free
        if extra < 0:
            return timedelta(0)
        cap = self.cap.total_seconds()
        exponent = min(extra, 64.0)  # 2**64 seconds is far past any cap
        return timedelta(seconds=min(cap, self.base.total_seconds() * 2.0**exponent))


def _jitter() -> float:
    """Members retrying together drift apart instead of hitting the broker or database as one."""
    return random.uniform(0.8, 1.2)


class RetryBackoff:
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


def retry_delay(attempts: int, base: float = 1.0, cap: float = 3600.0) -> float:
    """Seconds before the next try of something that failed ``attempts`` times (a
    notification): ``base`` doubling per attempt up to ``cap``, times ``jitter()``."""
    return min(cap, base * 2.0 ** min(max(attempts - 1, 0), 40)) * _jitter()

"""Growing delays between sign-in attempts, with failures that fade away.

A guess costs more the more guesses came before it from the same place, and
an honest user's old typos are forgotten: each attempt adds 1 to a score that
halves every ``half_life``; after ``free`` attempts the next one must wait
``base``, doubled per further attempt, up to ``cap``. Nothing ever locks: once the
wait is over a guess is checked again.
"""

from __future__ import annotations

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

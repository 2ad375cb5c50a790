"""The retry pause policy (domain.backoff.RetryBackoff), on a clock the test moves."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from domain.backoff import RetryBackoff


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pauses_double_up_to_the_cap() -> None:
    backoff = RetryBackoff(0.5, 3.0, clock=Clock(), jitter=lambda: 1.0)
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_only_progress_or_a_quiet_spell_starts_over() -> None:
    clock = Clock()
    backoff = RetryBackoff(0.5, 30.0, quiet=60.0, clock=clock, jitter=lambda: 1.0)
    backoff.failed()
    backoff.failed()
    backoff.succeeded()
    assert backoff.failed() == 0.5
    clock.now += 60.0  # a long wait for the same failure: still the same outage
    assert backoff.failed() == 1.0
    clock.now += 60.1  # nothing failed for longer than ``quiet``: a new outage
    assert backoff.failed() == 0.5


@given(
    initial=st.floats(0.01, 5.0),
    maximum=st.floats(5.0, 60.0),
    jitters=st.lists(st.floats(0.8, 1.2), min_size=1, max_size=30),
    waits=st.lists(st.floats(0.0, 100.0), min_size=30, max_size=30),
)
def test_without_progress_pauses_never_shrink_below_the_last_one_or_pass_the_cap(
    initial: float, maximum: float, jitters: list[float], waits: list[float]
) -> None:
    clock = Clock()
    draws = iter(jitters)
    backoff = RetryBackoff(initial, maximum, quiet=1e9, clock=clock, jitter=lambda: next(draws))
    bases = []
    for jitter, wait in zip(jitters, waits, strict=False):
        bases.append(backoff.failed() / jitter)
        clock.now += wait
    assert all(b >= a * (1 - 1e-9) for a, b in pairwise(bases))
    assert all(initial * 0.999 <= b <= maximum * 1.001 for b in bases)

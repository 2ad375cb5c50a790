"""domain.backoff: waits grow with the score and stay capped; scores only fade."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.backoff import Backoff

POLICY = Backoff()
scores = st.floats(min_value=0, max_value=1e6, allow_nan=False)
seconds = st.floats(min_value=0, max_value=1e7, allow_nan=False)


@given(scores, scores)
def test_waits_grow_with_the_score_and_never_pass_the_cap(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert POLICY.wait_after(low) <= POLICY.wait_after(high) <= POLICY.cap


@given(st.floats(min_value=0, max_value=POLICY.free, exclude_max=True))
def test_the_first_attempts_are_free(score: float) -> None:
    assert POLICY.wait_after(score) == timedelta(0)


@given(scores, seconds, seconds)
def test_scores_fade_and_never_grow_alone(score: float, t1: float, t2: float) -> None:
    first = POLICY.decayed(score, timedelta(seconds=t1))
    assert 0 <= first <= score
    later = POLICY.decayed(score, timedelta(seconds=t1 + t2))
    assert later <= first + 1e-9 * max(1.0, score)


@given(st.floats(min_value=0, max_value=1000))
def test_a_day_forgets_any_realistic_burst(score: float) -> None:
    assert POLICY.wait_after(POLICY.free) == POLICY.base
    assert POLICY.wait_after(POLICY.decayed(score, timedelta(days=1))) == timedelta(0)

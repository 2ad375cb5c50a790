"""projections.positions: the one definition of lag, and standings from status rows."""

from __future__ import annotations

from datetime import UTC, datetime

from projections.positions import Standing, lag, standings


def test_lag_is_head_minus_position_and_never_negative() -> None:
    assert lag(120, 100) == 20
    assert lag(100, 100) == 0
    assert lag(100, 130) == 0  # a position read after a head read a moment earlier


def test_standings_follow_the_names_and_a_projection_never_run_stands_at_zero() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    rows = [("b", 7, 8, "UndefinedTable (SQLSTATE 42P01)", at, 2)]
    assert standings(["a", "b"], rows) == [
        Standing("a"),
        Standing("b", 7, 8, "UndefinedTable (SQLSTATE 42P01)", at, 2),
    ]

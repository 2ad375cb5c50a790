"""projections.changes: the reported changes take the state before to the state after, and
nothing is reported when the states are equal; over real case histories, the changes of
the one incremental fold are those of two states folded from scratch."""

from __future__ import annotations

import copy
from contextlib import suppress

from hypothesis import assume, given
from hypothesis import strategies as st

from consumers.contract import parse_event
from domain.case import Case, handle
from domain.rules import RuleViolation
from projections import case_status
from projections.changes import Json, apply, diff, event_changes, keys_of, path, same
from tests.property.strategies import application_numbers, case_lines

# Few keys, so that two drawn states share some and differ in others; sometimes any text.
keys = st.sampled_from(["a", "b", "c", "status", "x.y", ""]) | st.text(max_size=6)
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
)
values: st.SearchStrategy[Json] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def related(draw: st.DrawFn, value: Json) -> Json:
    """``value`` with some parts kept, some replaced: states an event could lead to."""
    if isinstance(value, dict) and draw(st.integers(0, 9)) < 8:
        kept = {k: draw(related(v)) for k, v in value.items() if draw(st.integers(0, 5)) > 0}
        return {**kept, **draw(st.dictionaries(keys, values, max_size=2))}
    return value if draw(st.booleans()) else draw(values)


def nulls_dropped(value: Json) -> Json:
    """An absent key reads as null: drop null entries of objects (lists are whole values)."""
    if isinstance(value, dict):
        return {k: nulls_dropped(v) for k, v in value.items() if v is not None}
    return value


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Json, Json]:
    before = draw(values)
    return before, draw(related(before))


@given(pairs())
def test_applying_the_changes_to_the_before_state_gives_the_after_state(
    pair: tuple[Json, Json],
) -> None:
    before, after = pair
    kept = copy.deepcopy(before)
    changes = diff(before, after)
    assert same(nulls_dropped(apply(before, changes)), nulls_dropped(after))
    assert same(before, kept), "neither diff nor apply changes the state given"
    assert all(not same(c.before, c.after) for c in changes), "a change changes something"
    assert len({c.path for c in changes}) == len(changes), "one change per path"


@given(values)
def test_no_change_is_reported_between_equal_states(value: Json) -> None:
    assert diff(value, copy.deepcopy(value)) == []


@given(st.lists(st.text(max_size=8), max_size=5))
def test_a_path_names_its_keys(named: list[str]) -> None:
    assert keys_of(path(named)) == tuple(named)


@st.composite
def case_events(draw: st.DrawFn) -> list[Case.Event]:
    """One case's events as stored: its generated lines the rules accepted, in order."""
    case: Case | None = None
    for line in draw(case_lines(draw(application_numbers))):
        with suppress(RuleViolation):
            case, _ = handle(case, parse_event(line))
    assume(case is not None)  # every line refused: no case
    assert case is not None
    return list(case.collect_events())


@given(case_events())
def test_the_incremental_changes_are_those_of_states_folded_from_scratch(
    events: list[Case.Event],
) -> None:
    found = event_changes(events)
    assert len(found) == len(events)
    before: Json = {}
    for version, changes in enumerate(found, 1):
        view = case_status.fold(events[:version])
        assert view is not None
        after = case_status.whole(view)
        assert changes == diff(before, after)
        assert same(nulls_dropped(apply(before, changes)), nulls_dropped(after))
        assert "days_elapsed" not in {c.path for c in changes}
        before = after

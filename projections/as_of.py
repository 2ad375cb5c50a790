"""A case's state as of a version or a time: the case_status fold of its events up to there.

Auditors (``GET /v1/audit/applications/{n}/events``) and operators (``casetrack
history --as-of-version``) replay the log itself, not the projections, so both
see the state the stored events give. Pure: callers read the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.case import Case
from projections import case_status
from projections.case_status import View


def events_as_of(
    events: Sequence[Case.Event], *, version: int | None = None, instant: datetime | None = None
) -> list[Case.Event]:
    """The events up to ``version``, or those recorded by ``instant`` (all without either).

    ``events`` are one case's, in version order; callers check that ``version`` is in range.
    """
    if version is not None and instant is not None:
        raise ValueError("give a version or an instant, not both")
    if version is not None:
        return list(events[:version])
    if instant is not None:
        return [e for e in events if e.timestamp <= instant]
    return list(events)


def state_as_of(
    events: Sequence[Case.Event], *, version: int | None = None, instant: datetime | None = None
) -> View | None:
    """The whole status view (no role filter) after ``events_as_of``, with the day-dependent
    figures as of the day the last of them was recorded; None before the first event."""
    selected = events_as_of(events, version=version, instant=instant)
    view = case_status.fold(selected)
    if view is None:
        return None
    return case_status.presented(view, selected[-1].timestamp.date())

"""What the tracker shows one role of one file: the status view with today's figures, the
estimate while the file is open, and the dated history that role may see.

One assembly for both readers: ``casetrack status`` and the API's file view
(adapters.http.views). Each fetches the parts its own way (the CLI queries the
tables; the API reads the view and the history, already served as JSON text by
the tracker_history projection, in one round trip, and caches estimates), so
the parts come in as arguments and nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, NamedTuple

from projections import case_status, timeline
from projections.case_status import View
from projections.roles import check


class EstimateOf(NamedTuple):
    """What a file's estimate is computed from: files of one category received in the same
    quarter share their figures (adapters.http.estimates caches them so)."""

    category: str
    received_on: date


def estimate_of(view: View, role: str) -> EstimateOf | None:
    """What the estimate ``role`` is shown is of; None when it is shown none: the file is
    closed, or ``role`` does not see its activities (the sponsor, and every role before the
    acknowledgement of receipt: case_status.for_role)."""
    check(role)
    if view["status"] == "closed" or role == "sponsor" or view["acknowledged_on"] is None:
        return None
    return EstimateOf(view["category"], date.fromisoformat(view["received_on"]))


def tracker_view(
    view: View,
    today: date,
    role: str,
    estimate: Mapping[str, Any] | None,
    history: object,
    /,
    **beside: object,
) -> View:
    """The file as the tracker shows it to ``role`` on ``today``: the role's status view,
    the ``estimate`` (fetched for what ``estimate_of`` named; None when it named nothing),
    what the reader serves ``beside`` the view (the API: the role and the language), then
    the ``history`` lines ``role`` may see (``served_history``, or the same as JSON text)."""
    shown = case_status.presented(view, today, role)
    if estimate is not None:
        shown["estimate"] = estimate
    shown.update(beside)
    shown["history"] = history
    return shown


def served_history(lines: Iterable[timeline.Entry], role: str, lang: str) -> list[timeline.Entry]:
    """The history lines (``timeline.entry`` dicts or case_history rows) ``role`` may see, as
    served in ``lang``: what the tracker_history projection keeps ready for the API."""
    return [timeline.served(line, lang) for line in timeline.for_role(lines, role)]

"""Every projection casetrack keeps, by name."""

from __future__ import annotations

from projections.case_history_table import CaseHistoryProjection
from projections.case_parties import CasePartiesProjection
from projections.case_status_table import CaseStatusProjection
from projections.notifications import NotificationsProjection
from projections.processing_stats_table import ProcessingStatsProjection
from projections.projector import Projection
from projections.tracker_history import TrackerHistoryProjection


def all_projections() -> dict[str, Projection]:
    projections: list[Projection] = [
        CaseStatusProjection(),
        CaseHistoryProjection(),
        ProcessingStatsProjection(),
        CasePartiesProjection(),
        TrackerHistoryProjection(),
        NotificationsProjection(),
    ]
    return {p.name: p for p in projections}


def select(names: list[str] | None) -> list[Projection]:
    """The named projections (all when ``names`` is empty); KeyError names the unknown one."""
    known = all_projections()
    if not names:
        return list(known.values())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown projection {unknown[0]!r}; known: {', '.join(known)}")
    return [known[n] for n in names]

"""The baselines' way of storing an event: one repository load and one save each.

What a first implementation with eventsourcing would do; the benchmarks
compare casetrack's batched paths with it on the same data.
"""

from __future__ import annotations

import json
from typing import Any

from consumers.contract import ContractError, parse_event
from domain.application_number import case_id
from domain.case import Case, handle
from domain.rules import RuleViolation


def save_one(app: Any, raw: bytes | str) -> bool:
    """Parse, load the case, apply, save (one transaction); False when not stored.

    The save is ``save_cases`` with one case, not the library's ``save``: personal data is
    sealed with the subjects' data keys, which only casetrack's save fetches (and makes,
    for a new file's people) before it records; a naive implementation would have to as
    well."""
    try:
        command = parse_event(raw)
    except ContractError:
        return False
    try:
        case: Case | None = app.repository.get(case_id(command.application_number))
    except Exception:  # AggregateNotFoundError: a new case
        case = None
    try:
        case, _ = handle(case, command)
    except RuleViolation:
        return False
    if not case.pending_events:
        return False
    app.save_cases([case])
    return True


def report(events: int, rate: float, base_rate: float, **extra: float) -> None:
    """The benchmarks' last line (``extra`` figures after the common ones)."""
    print(
        json.dumps(
            {
                "events": events,
                "events_per_s": round(rate, 1),
                "baseline_events_per_s": round(base_rate, 1),
                "ratio": round(rate / base_rate, 2),
                **{name: round(value, 1) for name, value in extra.items()},
            }
        )
    )

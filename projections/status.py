"""Where each projection stands: position, head of the log, lag, last error, and the
`casetrack project` process that holds its lease (host:pid; None when none runs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from projections.event_log import EventLog, Positioned
from projections.ports import ProjectionStore
from projections.positions import Positions, lag
from projections.projector import Projection


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    lag_events: int  # positions.lag: head minus position
    lag_seconds: float
    halted_at: int | None
    last_error: str | None
    last_error_at: str | None
    dead_letters: int
    holder: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def statuses(
    store: ProjectionStore,
    projections: list[Projection],
    holders: Mapping[str, str] | None = None,
) -> list[ProjectionStatus]:
    events = EventLog(store)
    result = []
    with store.datastore.transaction(commit=False) as curs:
        head = events.head(curs)
        standings = Positions(store.schema).standings(curs, [p.name for p in projections])
        for standing in standings:
            oldest = events.first_after(curs, standing.position)
            lag_seconds = 0.0
            if isinstance(oldest, Positioned):  # one that does not decode has no timestamp
                recorded: datetime = oldest.event.timestamp
                lag_seconds = max((datetime.now(UTC) - recorded).total_seconds(), 0.0)
            result.append(
                ProjectionStatus(
                    name=standing.name,
                    position=standing.position,
                    head=head,
                    lag_events=lag(head, standing.position),
                    lag_seconds=round(lag_seconds, 3),
                    halted_at=standing.halted_at,
                    last_error=standing.last_error,
                    last_error_at=standing.last_error_at.isoformat()
                    if standing.last_error_at
                    else None,
                    dead_letters=standing.dead_letters,
                    holder=(holders or {}).get(standing.name),
                )
            )
    return result

"""Where each projection stands: position, head of the log, lag, last error."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.sql import SQL, Identifier

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from projections.projector import Positioned, Projection, decode


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    halted_at: int | None
    last_error: str | None
    last_error_at: str | None
    dead_letters: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def statuses(store: CaseStore, projections: list[Projection]) -> list[ProjectionStatus]:
    schema = Identifier(store.schema)
    events = SQL("{}.{}").format(schema, Identifier(EVENTS_TABLE))
    result = []
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(SQL("SELECT coalesce(max(notification_id), 0) AS head FROM {}").format(events))
        head = int(curs.fetchone()["head"])  # type: ignore[index]
        for projection in projections:
            curs.execute(
                SQL(
                    "SELECT position, halted_at, last_error, last_error_at"
                    " FROM {}.projection_positions WHERE name = %s"
                ).format(schema),
                (projection.name,),
            )
            row = curs.fetchone() or {
                "position": 0,
                "halted_at": None,
                "last_error": None,
                "last_error_at": None,
            }
            position = int(row["position"])
            curs.execute(
                SQL("SELECT count(*) AS n FROM {} WHERE notification_id > %s").format(events),
                (position,),
            )
            lag = int(curs.fetchone()["n"])  # type: ignore[index]
            curs.execute(
                SQL(
                    "SELECT notification_id, originator_id, originator_version, topic, state"
                    " FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT 1"
                ).format(events),
                (position,),
            )
            oldest = curs.fetchone()
            lag_seconds = 0.0
            found = oldest and decode(
                store,
                oldest["notification_id"],
                oldest["originator_id"],
                oldest["originator_version"],
                oldest["topic"],
                bytes(oldest["state"]),
            )
            if isinstance(found, Positioned):  # one that does not decode has no timestamp
                recorded: datetime = found.event.timestamp
                lag_seconds = max((datetime.now(UTC) - recorded).total_seconds(), 0.0)
            curs.execute(
                SQL(
                    "SELECT count(*) AS n FROM {}.projection_dead_letters WHERE projection = %s"
                ).format(schema),
                (projection.name,),
            )
            dead = int(curs.fetchone()["n"])  # type: ignore[index]
            result.append(
                ProjectionStatus(
                    name=projection.name,
                    position=position,
                    head=head,
                    lag_events=lag,
                    lag_seconds=round(lag_seconds, 3),
                    halted_at=row["halted_at"],
                    last_error=row["last_error"],
                    last_error_at=row["last_error_at"].isoformat()
                    if row["last_error_at"]
                    else None,
                    dead_letters=dead,
                )
            )
    return result

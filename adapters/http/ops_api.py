"""Operations: liveness, readiness (database and projection lag) and Prometheus metrics.

/metrics shares the API's port, so it answers only the metrics token
(CASETRACK_METRICS_TOKEN); without one configured it is not served at all.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from fastapi import APIRouter, Request
from psycopg.sql import SQL, Identifier
from starlette.responses import Response

from adapters.http import models
from adapters.http.metrics import LogSnapshot
from adapters.http.problems import Problem, responses
from adapters.http.services import Services, ServicesDep
from adapters.postgres.event_store import EVENTS_TABLE
from projections.event_log import head_statement
from projections.positions import lag, standing_statement, standings
from projections.registry import all_projections

router = APIRouter(tags=["operations"])
_HEALTHY = orjson.dumps({"status": "ok"})


@router.get("/healthz", response_model=models.Health, summary="The process is up")
async def healthz() -> Response:
    return Response(_HEALTHY, media_type="application/json")


@router.get(
    "/readyz",
    response_model=models.Readiness,
    responses=responses(503),
    summary="The database answers and every projection is within the lag bound",
)
async def readyz(services: ServicesDep) -> Response:
    try:
        snapshot = await _snapshot(services)
    except Exception:
        raise Problem(503, "The database does not answer.") from None
    bound = services.settings.max_lag_events
    behind = sorted(
        name
        for name, lag in snapshot.lag_events.items()
        if lag > bound or snapshot.halted.get(name)
    )
    if behind:
        raise Problem(503, f"Projections behind or halted: {', '.join(behind)}.")
    body = {"status": "ready", "lag_events": snapshot.lag_events}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **responses(401, 404),
    },
    summary="Prometheus metrics (text format 0.0.4), for the metrics token only",
    openapi_extra={"security": [{"HTTPBearer": []}]},
)
async def metrics(request: Request, services: ServicesDep) -> Response:
    _check_metrics_token(request, services.settings.metrics_token)
    try:
        snapshot = await _snapshot(services)
    except Exception:
        snapshot = LogSnapshot()  # still serve the request metrics
    return Response(
        services.metrics.render(snapshot), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


def _check_metrics_token(request: Request, token: str | None) -> None:
    if token is None:
        raise Problem(404, "No such resource.")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise Problem(
            401,
            "Send the metrics token: Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": 'Bearer realm="casetrack-metrics"'},
        )


async def _snapshot(services: Services) -> LogSnapshot:
    schema = services.settings.schema
    names = list(all_projections())
    async with services.pool.connection(timeout=5.0) as conn:
        cur = await conn.execute(
            SQL("SELECT ({}), (SELECT count(*) FROM {}.dead_letters)").format(
                head_statement(schema, EVENTS_TABLE), Identifier(schema)
            )
        )
        head, dead = await cur.fetchone() or (0, 0)
        cur = await conn.execute(standing_statement(schema), (names,))
        rows: list[Any] = await cur.fetchall()
    snapshot = LogSnapshot(events=int(head), dead_letters=int(dead))
    for standing in standings(names, rows):
        snapshot.lag_events[standing.name] = lag(int(head), standing.position)
        snapshot.halted[standing.name] = standing.halted_at is not None
        snapshot.projection_dead_letters[standing.name] = standing.dead_letters
    return snapshot

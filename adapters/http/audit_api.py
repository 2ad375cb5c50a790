"""Auditor reads: every stored event of a file, and its state at a version or a time; the
tamper-evident log's proofs (a file's proof bundle, the latest signed checkpoint, the
consistency proof between two tree sizes: docs/integrity.md).

Auditors authenticate with an API key (``casetrack auditors add``). Every
auditor read, whatever its answer (validation errors included), is written to the
audit log (who, what, when) before the answer goes out; if the log cannot be
written, the read fails. Events come from the event store itself, not from
projections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from adapters.http import models
from adapters.http.auth import CurrentAuditor
from adapters.http.problems import Problem, field_errors, responses
from adapters.http.services import Services, ServicesDep
from adapters.postgres.auditors_store import Auditor
from adapters.postgres.proof_bundles import (
    LogAltered,
    NoCheckpoint,
    SinceBeyondCheckpoint,
    UnknownApplication,
    export_bundle,
    signed_checkpoint,
)
from domain import application_number as numbers
from domain.application_number import case_id
from domain.case import Case
from domain.integrity.merkle import ProofError
from domain.integrity.stored import HashedEvent
from projections.as_of import events_as_of, state_as_of
from projections.changes import Change, event_changes


class AuditedRoute(APIRoute):
    """Audits the answers FastAPI gives before the route runs: a request the auditor's
    key admits but whose parameters are invalid (422). Routes audit the rest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        action = self.name.removeprefix("audit_")

        async def audited(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                auditor = getattr(request.state, "auditor", None)
                if auditor is not None:
                    number = request.path_params.get("application_number")
                    parameters = {"invalid": field_errors(error)}
                    services: Services = request.app.state.services
                    await _log(
                        services, request, auditor, action,
                        number if numbers.is_valid(number) else None, parameters, 422,
                    )  # fmt: skip
                raise

        return audited


router = APIRouter(tags=["audit"], route_class=AuditedRoute)


async def _admitted(request: Request, auditor: CurrentAuditor) -> Auditor:
    """The caller's auditor, kept for AuditedRoute (which runs outside the route)."""
    request.state.auditor = auditor
    return auditor


Admitted = Annotated[Auditor, Depends(_admitted)]

_ENVELOPE = {
    "originator_id",
    "originator_version",
    "timestamp",
    "event_id",
    "event_type",
    "source",
    "occurred_at",
}
_JSON = "application/json"


def _altered(detail: str) -> Problem:
    """409: the stored log contradicts its signed checkpoint; no proof can be made until
    an operator finds out why (`casetrack audit verify`). Not the caller's error, and no
    retry helps."""
    return Problem(
        409,
        detail[0].upper() + detail[1:] + ".",
        slug="log-altered",
        title="The log does not match its signed checkpoint",
    )


@router.get(
    "/v1/audit/applications/{application_number}/events",
    response_model=None,
    responses={
        200: {"model": models.AuditEvents, "description": "Stored events and the state"},
        **responses(401, 403, 404, 422),
    },
    summary="Every stored event of a file, or the state as of a version or a time",
)
async def events(
    application_number: models.NumberInPath,
    request: Request,
    auditor: Admitted,
    services: ServicesDep,
    as_of_version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    as_of: Annotated[
        datetime | None, Query(description="An RFC 3339 time with its offset; recorded time")
    ] = None,
) -> Response:
    parameters = {
        "as_of_version": as_of_version,
        "as_of": as_of.isoformat() if as_of else None,
    }
    answer = _events(services, application_number, as_of_version, as_of)
    return await _audited(services, request, auditor, "events", application_number, parameters,
                          answer)  # fmt: skip


@router.get(
    "/v1/audit/log",
    response_model=models.AuditLog,
    responses=responses(401, 403, 422),
    summary="The audit log itself, newest first (reading it is logged too)",
)
async def audit_log(
    request: Request,
    auditor: Admitted,
    services: ServicesDep,
    before: Annotated[int, Query(ge=1, le=2**62)] = 2**62,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    await _log(services, request, auditor, "log", None, {"before": before, "limit": limit}, 200)
    entries = await services.auditors.entries(before, limit)
    return Response(orjson.dumps({"entries": entries}), media_type=_JSON)


@router.get(
    "/v1/audit/applications/{application_number}/proof",
    response_model=None,
    responses={
        200: {"model": models.ProofBundle, "description": "The file's proof bundle"},
        **responses(401, 403, 404, 409, 422),
    },
    summary="A file's proof bundle: its events, hashes and inclusion proofs under the latest"
    " signed checkpoint (what `casetrack audit export` prints)",
)
async def proof(
    application_number: models.NumberInPath,
    request: Request,
    auditor: Admitted,
    services: ServicesDep,
    since: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**62,
            description="Add the consistency proof from the checkpoint of this size (one kept)",
        ),
    ] = None,
) -> Response:
    answer = _proof(services, application_number, since)
    return await _audited(services, request, auditor, "proof", application_number,
                          {"since": since}, answer)  # fmt: skip


async def _proof(services: Services, number: str, since: int | None) -> dict[str, Any]:
    try:
        return await run_in_threadpool(
            export_bundle, services.case_store.integrity, [number], since
        )
    except UnknownApplication:
        raise Problem(404, "No application with that number.") from None
    except NoCheckpoint:
        raise Problem(404, "No checkpoint yet: the log has not been signed.") from None
    except SinceBeyondCheckpoint as error:
        raise Problem(
            422, f"since must be at most {error.size}, the latest checkpoint's size."
        ) from None
    except LogAltered as error:
        raise _altered(str(error)) from None


@router.get(
    "/v1/audit/checkpoints/latest",
    response_model=None,
    responses={
        200: {"model": models.CheckpointOut, "description": "The latest signed checkpoint"},
        **responses(401, 403, 404, 409),
    },
    summary="The latest signed checkpoint of the log's Merkle tree (size and root as its"
    " signed note holds them)",
)
async def checkpoints_latest(
    request: Request, auditor: Admitted, services: ServicesDep
) -> Response:
    return await _audited(services, request, auditor, "checkpoints_latest", None, {},
                          _latest(services))  # fmt: skip


async def _latest(services: Services) -> dict[str, Any]:
    latest = await run_in_threadpool(services.case_store.integrity.latest)
    if latest is None:
        raise Problem(404, "No checkpoint yet: the log has not been signed.")
    try:
        signed = signed_checkpoint(latest)
    except LogAltered as error:
        raise _altered(str(error)) from None
    return {"size": signed.size, "root": signed.root.hex(), "note": latest.note}


@router.get(
    "/v1/audit/checkpoints/consistency",
    response_model=None,
    responses={
        200: {"model": models.ConsistencyOut, "description": "The consistency proof"},
        **responses(401, 403, 409, 422),
    },
    summary="The proof that the log's tree at one size is a prefix of it at a larger size",
)
async def checkpoints_consistency(
    request: Request,
    auditor: Admitted,
    services: ServicesDep,
    from_: Annotated[int, Query(alias="from", ge=0, le=2**62, description="The older size")],
    to: Annotated[int, Query(ge=0, le=2**62, description="The newer size")],
) -> Response:
    return await _audited(services, request, auditor, "checkpoints_consistency", None,
                          {"from": from_, "to": to}, _consistency(services, from_, to))  # fmt: skip


async def _consistency(services: Services, from_: int, to: int) -> dict[str, Any]:
    if from_ > to:
        raise Problem(422, "from must not be larger than to.")
    # The log only grows: a `to` within it now stays within it, so a proof that fails
    # after this check means the log lost leaves it once held.
    if to > await run_in_threadpool(services.case_store.integrity.size):
        raise Problem(422, "to is beyond the log: it has fewer events.")
    try:
        proof = await run_in_threadpool(services.case_store.integrity.consistency_proof, from_, to)
    except ProofError:
        raise _altered(
            f"the log no longer holds the events of its tree at size {to}: run"
            " `casetrack audit verify`"
        ) from None
    return {"from": from_, "to": to, "proof": [h.hex() for h in proof]}


async def _audited(
    services: Services,
    request: Request,
    auditor: Auditor,
    action: str,
    number: str | None,
    parameters: dict[str, Any],
    answer: Awaitable[dict[str, Any]],
) -> Response:
    """The answer, with its audit log entry written first, whatever it is (a refusal is
    logged with its status): the log comes before the answer goes out."""
    try:
        body = await answer
    except Problem as problem:
        await _log(services, request, auditor, action, number, parameters, problem.status)
        raise
    await _log(services, request, auditor, action, number, parameters, 200)
    return Response(orjson.dumps(body, default=_plain), media_type=_JSON)


async def _events(
    services: Services, number: str, as_of_version: int | None, as_of: datetime | None
) -> dict[str, Any]:
    if as_of_version is not None and as_of is not None:
        raise Problem(422, "Give as_of_version or as_of, not both.")
    if as_of is not None and as_of.tzinfo is None:
        raise Problem(422, "as_of needs a time zone offset, e.g. 2024-05-01T12:00:00Z.")
    audited: list[tuple[Case.Event, HashedEvent | None]] = await run_in_threadpool(
        services.case_store.audited_events, case_id(number)
    )
    stored = [event for event, _ in audited]
    hashes = {event.originator_version: hashed for event, hashed in audited}
    if not stored:
        raise Problem(404, "No application with that number.")
    if as_of_version is not None and as_of_version > len(stored):
        raise Problem(422, f"as_of_version must be between 1 and {len(stored)}.")
    selected = events_as_of(stored, version=as_of_version, instant=as_of)
    return {
        "application_number": number,
        "as_of_version": as_of_version,
        "as_of": as_of,
        "events": [
            _event(e, c, hashes[e.originator_version])
            for e, c in zip(selected, event_changes(selected), strict=True)
        ],
        "state": state_as_of(selected),
    }


def _event(event: Case.Event, changes: list[Change], hashed: HashedEvent | None) -> dict[str, Any]:
    return {
        "version": event.originator_version,
        "event_type": event.event_type,
        "event_id": str(event.event_id),
        "source": event.source,
        "occurred_at": event.occurred_at,
        "recorded_at": event.timestamp,
        "data": {k: v for k, v in vars(event).items() if k not in _ENVELOPE},
        "changes": [{"path": c.path, "before": c.before, "after": c.after} for c in changes],
        "leaf_index": hashed.leaf_index if hashed else None,
        "leaf": hashed.leaf.hex() if hashed else None,
        "chain": hashed.chain.hex() if hashed else None,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, UUID | date):
        return str(value)
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(type(value).__name__)


async def _log(
    services: Services,
    request: Request,
    auditor: Auditor,
    action: str,
    number: str | None,
    parameters: dict[str, Any],
    status: int,
) -> None:
    await services.auditors.log(
        auditor, action, number, parameters, status,
        request.scope.get("state", {}).get("request_id", ""), services.settings.clock(),
    )  # fmt: skip

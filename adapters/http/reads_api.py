"""The tracker's reads: the caller's files, one file's status view for the caller's
role, and its history. Only projections are read.

A file the caller is not linked to answers exactly like one that does not
exist. Well-formed requests for a file are usually answered by the fast lane
(adapters.http.fast_lane) before they reach these routes; both build their
answers with adapters.http.views, and these routes document them.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from adapters.http import models, views
from adapters.http.auth import BEARER_SECURITY, CurrentAccount, session_hash_of
from adapters.http.problems import responses
from adapters.http.services import Services, ServicesDep

router = APIRouter(tags=["applications"])

LangQuery = Annotated[
    models.Lang | None, Query(description="en or fr; default: the account's language")
]
_READ_RESPONSES = {
    304: {"description": "Not modified"},
    **responses(401, 403, 404, 422),
}


@router.get(
    "/v1/applications",
    response_model=models.Applications,
    responses=responses(401, 403),
    summary="The caller's files",
)
async def applications(account: CurrentAccount, services: ServicesDep) -> Response:
    links = await services.accounts.links(account.account_id)
    return Response(orjson.dumps({"applications": links}), media_type="application/json")


@router.get(
    "/v1/applications/{application_number}",
    response_model=None,
    responses={
        200: {"model": models.ApplicationView, "description": "The view for the caller's role"},
        **_READ_RESPONSES,
    },
    summary="One file's status view, filtered by the caller's role",
    openapi_extra=BEARER_SECURITY,
)
async def application(
    application_number: models.NumberInPath, request: Request, lang: LangQuery = None
) -> Response:
    return await _answer(request, application_number, lang, history=False)


@router.get(
    "/v1/applications/{application_number}/history",
    response_model=None,
    responses={
        200: {
            "model": models.History,
            "description": "The dated history the caller's role may see, oldest first",
        },
        **_READ_RESPONSES,
    },
    summary="One file's history, filtered by the caller's role",
    openapi_extra=BEARER_SECURITY,
)
async def history(
    application_number: models.NumberInPath, request: Request, lang: LangQuery = None
) -> Response:
    return await _answer(request, application_number, lang, history=True)


async def _answer(request: Request, number: str, lang: str | None, *, history: bool) -> Response:
    services: Services = request.app.state.services
    headers = request.headers
    conditions = views.Conditions(headers.get("if-none-match"), headers.get("if-modified-since"))
    token = session_hash_of(request)
    answer = await views.answer(services, token, number, lang, conditions, history=history)
    response = Response(answer.body, status_code=answer.status)
    response.raw_headers = [*answer.headers, (b"content-length", str(len(answer.body)).encode())]
    if answer.status == 304:
        response.raw_headers = answer.headers
    return response

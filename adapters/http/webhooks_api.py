"""A representative's webhook endpoints: register (the secret is shown once), list,
delete. Deliveries are the notifier's (adapters.notifier, docs/notifications.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from adapters.http import models
from adapters.http.auth import CurrentAccount, guard
from adapters.http.problems import Problem, responses
from adapters.http.services import ServicesDep
from adapters.postgres.accounts_store import Account
from adapters.postgres.webhooks_store import MAX_PER_ACCOUNT, Endpoint, TooManyEndpoints
from adapters.webhook_client import UrlRefused, check_url
from domain import webhook_signature
from projections.notify_changes import EVENT_TYPES

router = APIRouter(tags=["webhooks"])
WebhookId = Annotated[int, Path(ge=1, le=2**62, description="The endpoint's id")]


def _representative(account: Account) -> None:
    if account.kind != "representative":
        raise Problem(403, "Only representatives' accounts may register webhooks.")


def _out(endpoint: Endpoint) -> models.Webhook:
    return models.Webhook(
        id=endpoint.endpoint_id,
        url=endpoint.url,
        events=endpoint.events,  # type: ignore[arg-type]  # stored from WebhookEvent values
        created_at=endpoint.created_at,
        disabled=endpoint.disabled_at is not None,
    )


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=models.WebhookCreated,
    responses=responses(400, 401, 403, 409, 422, 429),
    summary="Register a webhook endpoint for the representative's files",
)
async def create(
    body: models.WebhookRequest, request: Request, account: CurrentAccount, services: ServicesDep
) -> models.WebhookCreated:
    _representative(account)
    await guard(request, services, "webhook", account.login)  # each try resolves a host
    try:  # resolves the host: off the event loop
        await run_in_threadpool(check_url, body.url, services.settings.webhook_allow_private)
    except UrlRefused as e:
        raise Problem(422, f"This URL cannot receive webhooks: {e}.", slug="url-refused") from None
    events = list(dict.fromkeys(body.events or EVENT_TYPES))
    secret = webhook_signature.new_secret()
    now = services.settings.clock()
    try:
        endpoint = await services.webhooks.add(account.account_id, body.url, events, secret, now)
    except TooManyEndpoints:
        raise Problem(
            409, f"An account may register {MAX_PER_ACCOUNT} endpoints; delete one first."
        ) from None
    return models.WebhookCreated(**_out(endpoint).model_dump(), secret=secret)


@router.get(
    "/v1/webhooks",
    response_model=models.Webhooks,
    responses=responses(401, 403),
    summary="The representative's webhook endpoints (never their secrets)",
)
async def list_webhooks(account: CurrentAccount, services: ServicesDep) -> models.Webhooks:
    _representative(account)
    return models.Webhooks(
        webhooks=[_out(e) for e in await services.webhooks.list(account.account_id)]
    )


@router.delete(
    "/v1/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses=responses(401, 403, 404, 422),
    summary="Delete a webhook endpoint: nothing more is sent to it",
)
async def delete(webhook_id: WebhookId, account: CurrentAccount, services: ServicesDep) -> Response:
    _representative(account)
    if not await services.webhooks.delete(account.account_id, webhook_id):
        raise Problem(404, "No such webhook endpoint.")
    return Response(status_code=204)

"""Sign in (a session token) and sign out, with lockout after repeated failures.

Failures are counted per login whether or not an account uses it, and an
unknown login still costs a password verification, so neither the answers
nor their timing reveal which logins exist.
"""

from __future__ import annotations

import math
from datetime import datetime

from fastapi import APIRouter, Request, Response

from adapters.http import models
from adapters.http.auth import CurrentAccount, SessionHash, guard
from adapters.http.problems import Problem, responses
from adapters.http.services import Found
from domain import accounts

router = APIRouter(tags=["sessions"])


def locked(until: datetime, now: datetime) -> Problem:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    return Problem(
        423,
        f"Too many failed sign-ins for this login; try again in {seconds} seconds"
        " or reset your password.",
        headers={"Retry-After": str(seconds)},
    )


@router.post(
    "/v1/sessions",
    status_code=201,
    response_model=models.SessionToken,
    responses=responses(400, 401, 422, 423, 429),
    summary="Sign in with a UCI (or a representative's email) and password",
)
async def sign_in(body: models.Credentials, request: Request, found: Found) -> models.SessionToken:
    settings = found.settings
    login = accounts.normalize_login(body.login)
    await guard(request, found, "login", login)
    now = settings.clock()
    key = accounts.bucket_digest(settings.secret_key, "lockout|" + login)
    until = await found.accounts.locked_until(key, now)
    if until is not None:
        raise locked(until, now)
    existing = await found.accounts.account(login)
    if not await found.passwords.verify(existing[1] if existing else None, body.password):
        limits = settings.limits
        until = await found.accounts.login_failed(
            key, now, limits.lockout_failures, now + limits.lockout
        )
        if until is not None:
            raise locked(until, now)
        raise Problem(
            401, "The login or the password is wrong.", slug="invalid-credentials",
            title="Sign-in failed",
        )  # fmt: skip
    assert existing is not None
    await found.accounts.login_succeeded(key)
    token = accounts.new_token(accounts.SESSION_PREFIX)
    expires_at = now + settings.session_ttl
    await found.accounts.new_session(
        existing[0].account_id, accounts.token_digest(token), now, expires_at
    )
    return models.SessionToken(token=token, expires_at=expires_at)


@router.delete(
    "/v1/sessions/current",
    status_code=204,
    response_class=Response,
    responses=responses(401, 403),
    summary="Sign out: the token stops working at once",
)
async def sign_out(account: CurrentAccount, token: SessionHash, found: Found) -> Response:
    await found.accounts.revoke_session(token, found.settings.clock())
    return Response(status_code=204)

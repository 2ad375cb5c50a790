"""Sign in (a session token) and sign out; guesses from one place wait longer and longer.

Each attempt is counted for its login and client address before the password is
checked, so parallel guesses are all counted; past a few, the next attempt from
there must wait (429 with Retry-After), twice as long each time, and the count
fades. Nothing locks a login for everyone: a guesser elsewhere never keeps the
owner out. An unknown login counts and costs a password verification like any
other, so neither the answers nor their timing reveal which logins exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from adapters.http import models
from adapters.http.auth import CurrentAccount, SessionHash, backoff_bucket, count_guess, guard
from adapters.http.problems import Problem, responses
from adapters.http.services import ServicesDep
from domain import accounts

router = APIRouter(tags=["sessions"])


@router.post(
    "/v1/sessions",
    status_code=201,
    response_model=models.SessionToken,
    responses=responses(400, 401, 422, 429),
    summary="Sign in with a UCI (or a representative's email) and password",
)
async def sign_in(
    body: models.Credentials, request: Request, services: ServicesDep
) -> models.SessionToken:
    settings = services.settings
    login = accounts.normalize_login(body.login)
    await guard(request, services, "login", login)
    now = settings.clock()
    bucket = backoff_bucket(request, services, "sign-in", login)
    await count_guess(services, bucket, settings.limits.sign_in, now, "login")
    existing = await services.accounts.account(login)
    if not await services.passwords.verify(existing[1] if existing else None, body.password):
        raise _invalid_credentials()
    assert existing is not None
    account, checked_hash = existing
    token = accounts.new_token(accounts.SESSION_PREFIX)
    expires_at = now + settings.session_ttl
    digest = accounts.token_digest(token)
    if not await services.accounts.new_session(
        account.account_id, checked_hash, digest, now, expires_at
    ):
        raise _invalid_credentials()  # the password was reset since it was checked
    await services.accounts.forget(bucket)
    return models.SessionToken(token=token, expires_at=expires_at)


def _invalid_credentials() -> Problem:
    return Problem(
        401, "The login or the password is wrong.", slug="invalid-credentials",
        title="Sign-in failed",
    )  # fmt: skip


@router.delete(
    "/v1/sessions/current",
    status_code=204,
    response_class=Response,
    responses=responses(401, 403),
    summary="Sign out: the token stops working at once",
)
async def sign_out(account: CurrentAccount, token: SessionHash, services: ServicesDep) -> Response:
    await services.accounts.revoke_session(token, services.settings.clock())
    return Response(status_code=204)

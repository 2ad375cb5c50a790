"""Registration, verification and password reset, as the real tracker works.

Registration and reset requests always answer 202 with the same body, and
all their work past the rate limits (reading the file's parties, matching,
reading the address on file from the log, hashing and storing the code, sending
mail) goes to the outbox's workers, so
neither the body, the request's timing nor the next request's on the same
connection tells whether a file or an account exists. Codes get a fixed
number of attempts, counted before the check so concurrent guesses cannot
exceed it.
"""

from __future__ import annotations

from uuid import UUID

import structlog
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from adapters.http import models
from adapters.http.auth import CurrentAccount, backoff_bucket, count_guess, guard
from adapters.http.outbox import Job
from adapters.http.problems import Problem, responses
from adapters.http.services import Services, ServicesDep
from adapters.mail_texts import code_message
from adapters.postgres.accounts_store import AccountExists, PendingCode
from adapters.smtp import MailNotSent
from domain import accounts
from domain.application_number import case_id
from projections import case_parties

log = structlog.get_logger("casetrack.accounts")
router = APIRouter(tags=["accounts"])

_REGISTER_ANSWER = (
    "If the details match a file that has an email address, a code is on its way to that"
    " address (to the representative's when the file has one)."
)
_RESET_ANSWER = "If an account uses that login, a code is on its way to its email address."


def invalid_code() -> Problem:
    return Problem(
        400,
        "The code is wrong, expired, already used or tried too many times; request a new one.",
        slug="invalid-code",
        title="The code is not valid",
    )


def account_exists() -> Problem:
    return Problem(
        409,
        "An account already uses this login; its password and email stay as they are. Sign in"
        " and add the file with this code (POST /v1/accounts/link), or reset the password.",
        slug="account-exists",
        title="The account already exists",
    )


def weak_password(error: accounts.WeakPassword) -> Problem:
    return Problem(422, str(error), slug="weak-password", title="The password is too weak")


@router.post(
    "/v1/accounts/register",
    status_code=202,
    response_model=models.Accepted,
    responses=responses(400, 422, 429, 503),
    summary="Ask for a verification code",
)
async def register(
    body: models.Registration, request: Request, services: ServicesDep
) -> models.Accepted:
    registration = accounts.Registration(
        role=body.role,
        family_name=body.family_name,
        uci=getattr(body, "uci", None),
        date_of_birth=getattr(body, "date_of_birth", None),
        email=getattr(body, "email", None),
        membership_id=getattr(body, "membership_id", None),
    )
    await guard(request, services, "register", registration.login)
    _enqueue(services, lambda: _match_and_issue(services, registration, body.application_number))
    return models.Accepted(detail=_REGISTER_ANSWER)


@router.post(
    "/v1/accounts/verify",
    status_code=201,
    response_model=models.Activated,
    responses=responses(400, 409, 422, 429),
    summary="Create the account with the emailed code and a password",
)
async def verify(
    body: models.Verification, request: Request, services: ServicesDep
) -> models.Activated:
    login = await _login_for_new_password(request, services, "verify", body.login, body.password)
    now = services.settings.clock()
    code = await _spend_attempt(request, services, login, "register", body.code)
    if code.application_number and code.role:
        files = [(case_id(code.application_number), code.role)]
        _check_names(body.password, await _family_names_on_file(services, files))
    password_hash = await services.passwords.hash(body.password)
    kind = "representative" if code.role == "representative" else "client"
    try:
        if await services.accounts.activate(login, kind, code, password_hash, now) is None:
            raise invalid_code()
    except AccountExists:
        raise account_exists() from None
    return models.Activated()


@router.post(
    "/v1/accounts/link",
    status_code=201,
    response_model=models.Linked,
    responses=responses(400, 401, 403, 422, 429),
    summary="Add another file to the signed-in account with that file's emailed code",
)
async def link(
    body: models.LinkRequest, request: Request, account: CurrentAccount, services: ServicesDep
) -> models.Linked:
    """Only a session of the account plus the file's code links a file: a code alone (which
    may have gone to a representative) never opens the person's other files."""
    await guard(request, services, "verify", account.login)
    code = await _spend_attempt(request, services, account.login, "register", body.code)
    if not await services.accounts.link(account, code, services.settings.clock()):
        raise invalid_code()
    return models.Linked(
        application_number=code.application_number or "",
        role=code.role,  # type: ignore[arg-type]  # a register code holds its file's role
    )


@router.post(
    "/v1/accounts/password-reset",
    status_code=202,
    response_model=models.Accepted,
    responses=responses(400, 422, 429, 503),
    summary="Ask for a password reset code",
)
async def password_reset(
    body: models.ResetRequest, request: Request, services: ServicesDep
) -> models.Accepted:
    login = accounts.normalize_login(body.login)
    await guard(request, services, "reset", login)
    _enqueue(services, lambda: _issue_reset(services, login))
    return models.Accepted(detail=_RESET_ANSWER)


@router.post(
    "/v1/accounts/password-reset/confirm",
    status_code=200,
    response_model=models.Activated,
    responses=responses(400, 422, 429),
    summary="Set a new password with the emailed code; every session is signed out",
)
async def password_reset_confirm(
    body: models.ResetConfirmation, request: Request, services: ServicesDep
) -> models.Activated:
    login = await _login_for_new_password(
        request, services, "reset-confirm", body.login, body.password
    )
    now = services.settings.clock()
    code = await _spend_attempt(request, services, login, "reset", body.code)
    existing = await services.accounts.account(login)
    if existing is None:
        raise invalid_code()
    files = await services.accounts.linked_files(existing[0].account_id)
    _check_names(body.password, await _family_names_on_file(services, files))
    password_hash = await services.passwords.hash(body.password)
    if not await services.accounts.reset_password(
        login, existing[0].account_id, code, password_hash, now
    ):
        raise invalid_code()
    await services.accounts.forget(backoff_bucket(request, services, "sign-in", login))
    return models.Activated()


async def _login_for_new_password(
    request: Request, services: Services, action: str, given_login: str, password: str
) -> str:
    """The normalised login, once the caller is within ``action``'s rate limits and the
    new password is strong enough (all but the names on file: see _check_names)."""
    login = accounts.normalize_login(given_login)
    await guard(request, services, action, login)
    try:
        await run_in_threadpool(accounts.check_shape, password, login)  # zxcvbn: milliseconds
    except accounts.WeakPassword as e:
        raise weak_password(e) from None
    return login


async def _family_names_on_file(services: Services, files: list[tuple[UUID, str]]) -> list[str]:
    """The family name of each (case id, role), read from the log (case_parties keeps
    only blind indexes); none for a file or person erased since."""
    if not files:
        return []
    cases = await run_in_threadpool(services.case_store.load, {cid for cid, _ in files})
    names = [accounts.family_name_on_file(cases.get(cid), role) for cid, role in files]
    return [name for name in names if name]


def _check_names(password: str, names: list[str]) -> None:
    """The family names on the caller's files: only checked once the code is right, or a
    refusal would confirm a guessed name."""
    try:
        accounts.check_names(password, names)
    except accounts.WeakPassword as e:
        raise weak_password(e) from None


async def _spend_attempt(
    request: Request, services: Services, login: str, purpose: str, given: str
) -> PendingCode:
    """The live code (of any of the login's files) that ``given`` matches.

    The guess counts first against this address's backoff (past 5, it waits), then
    against each live code's total: both before the check, so parallel guesses cannot
    exceed either. No live code still costs one hash, like a wrong one.
    """
    settings = services.settings
    now = settings.clock()
    bucket = backoff_bucket(request, services, f"code-{purpose}", login)
    await count_guess(services, bucket, settings.limits.code_guesses, now, f"{purpose}-code")
    codes = await services.accounts.spend_attempt(login, purpose, accounts.CODE_MAX_ATTEMPTS, now)
    if not codes:
        await services.passwords.verify(None, given)
    for code in codes:
        if await services.passwords.verify(code.code_hash, given):
            await services.accounts.forget(bucket)
            return code
    raise invalid_code()


def _enqueue(services: Services, job: Job) -> None:
    """Hand the slow work to the outbox: the request does the same whatever matched."""
    if not services.outbox.submit(job):
        raise Problem(
            503, "Too many requests are waiting; try again in a minute.",
            headers={"Retry-After": "60"},
        )  # fmt: skip


async def _match_and_issue(
    services: Services, registration: accounts.Registration, application_number: str
) -> None:
    async with services.pool.connection() as conn, conn.cursor() as curs:
        parties = await case_parties.read(curs, services.settings.schema, application_number)
    delivery = accounts.delivery(registration, parties, services.settings.vault.blind_index)
    if delivery is None:
        return
    # The address is read from the log: case_parties holds only indexes. None when the
    # person's key was destroyed after the view last saw the file (it is erased).
    cases = await run_in_threadpool(services.case_store.load, [case_id(application_number)])
    email = accounts.email_on_file(cases.get(case_id(application_number)), delivery.to)
    if email is not None:
        await _issue_code(
            services, "register", delivery.login, email, delivery.language,
            application_number, delivery.role,
        )  # fmt: skip


async def _issue_reset(services: Services, login: str) -> None:
    existing = await services.accounts.account(login)
    if existing is not None:
        account = existing[0]
        await _issue_code(services, "reset", login, account.email, account.language)


async def _issue_code(
    services: Services,
    purpose: str,
    login: str,
    email: str,
    language: str,
    application_number: str | None = None,
    role: str | None = None,
) -> None:
    """Store a fresh code (replacing the old one) and mail it; runs in the outbox."""
    settings = services.settings
    now = settings.clock()
    budget = settings.limits.mails_per_login
    key = f"mail|{purpose}|{login}|{application_number or ''}"  # per file: see register
    bucket = accounts.bucket_digest(settings.secret_key, key)
    if await services.rates.hit(bucket, budget.hits, budget.per_seconds, now):
        # logged, never counted in the metrics: only a match or a real login gets here
        log.info("code not sent: mail limit", purpose=purpose)
        return  # the latest code sent is still valid
    code = accounts.new_code()
    try:
        await services.accounts.put_code(
            login, purpose, await services.passwords.hash(code), email, language,
            now + settings.code_ttl, now, application_number, role,
        )  # fmt: skip
        hours = int(settings.code_ttl.total_seconds() // 3600)
        subject, text = code_message(purpose, language, code, hours, accounts.CODE_MAX_ATTEMPTS)
        await run_in_threadpool(settings.mailer.send, email, subject, text)
        log.info("code sent", purpose=purpose, application_number=application_number)
    except MailNotSent as e:
        log.warning("code not sent", purpose=purpose, error=str(e))
    except Exception as e:  # a background task has nobody to answer: log the type only
        log.error("code not issued", purpose=purpose, error=type(e).__name__)


@router.get(
    "/v1/accounts/me",
    response_model=models.Me,
    responses=responses(401, 403),
    summary="The signed-in account's settings",
)
async def me(account: CurrentAccount) -> models.Me:
    return _me(account.login, account.kind, account.language, account.notify)


@router.patch(
    "/v1/accounts/me",
    response_model=models.Me,
    responses=responses(400, 401, 403, 422),
    summary="Change the account's settings: opt out of change notifications, or back in",
)
async def update_me(
    body: models.MeUpdate, account: CurrentAccount, services: ServicesDep
) -> models.Me:
    await services.accounts.set_notify(account.account_id, body.notifications)
    return _me(account.login, account.kind, account.language, body.notifications)


def _me(login: str, kind: str, language: str, notify: bool) -> models.Me:
    return models.Me(
        login=login,
        kind=kind,  # type: ignore[arg-type]  # "client" or "representative" (erased: no session)
        language=language,  # type: ignore[arg-type]  # from the file: en or fr
        notifications=notify,
    )

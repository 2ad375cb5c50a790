"""The tracker's web pages: sign in, create an account, reset a password, sign out, the
caller's applications and one application, account settings (change emails on or off),
in English (/en/...) and French (/fr/...).

Every form posts to the JSON API's own handlers (adapters.http.accounts_api and
sessions_api, called as functions; the settings form is PATCH /v1/accounts/me's): the
same rate limits, backoff, code attempts, password policy and enumeration resistance,
and the same server-side sessions. The application page reads through
adapters.http.views, as the API does, so a role sees on the page exactly what the API
shows it. Pages need no JavaScript.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import RedirectResponse, Response

from adapters.http import accounts_api, models, sessions_api, views
from adapters.http.problems import Problem
from adapters.http.services import Services
from adapters.http.web import cookies, page, render
from adapters.http.web.render import STATIC
from adapters.http.web.texts import LANGS, t
from adapters.postgres.accounts_store import Account
from domain import application_number as numbers

router = APIRouter(include_in_schema=False)

_CSS = (STATIC / "tracker.css").read_bytes()
_NOTICES = frozenset(
    {
        "created", "reset", "signed_out", "expired", "code_sent", "reset_sent",
        "notifications_on", "notifications_off",
    }
)  # fmt: skip
_FORM_TYPE = "application/x-www-form-urlencoded"

_REGISTRATION: TypeAdapter[models.ApplicantRegistration | models.RepresentativeRegistration] = (
    TypeAdapter(models.Registration)
)
Errors = list[tuple[str, str]]  # (field id, message); "" for the form as a whole
Endpoint = Callable[..., Awaitable[Response]]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _page(method: str, path: str) -> Callable[[Endpoint], Endpoint]:
    """Register the page at ``path`` under each language (/en/..., /fr/...): only those
    prefixes reach these routes, so any other path stays the API's (its 404 problem, and
    "unmatched" in the metrics)."""

    def register(endpoint: Endpoint) -> Endpoint:
        for lang in LANGS:
            router.add_api_route(f"/{lang}{path}", endpoint, methods=[method])
        return endpoint

    return register


def _lang(request: Request) -> str:
    """The page's language: its path's first segment (see _page)."""
    lang = str(request.scope["path"][1:3])
    assert lang in LANGS
    return lang


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers={"cache-control": "no-store"})


def _show(
    request: Request, template: str, lang: str, status: int = 200, **context: Any
) -> Response:
    return render.page(
        request, template, lang, _services(request).settings.secret_key, status, **context
    )


def _not_found(request: Request, lang: str) -> Response:
    return _show(request, "not_found.html", lang, 404, signed_in=False)


async def _form(request: Request) -> dict[str, str] | None:
    """The posted form's fields, or None when it is not a form of ours (no CSRF token
    matching the browser's cookie, or not url-encoded)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != _FORM_TYPE:
        return None
    body = (await request.body()).decode("utf-8", "replace")
    try:
        fields = dict(parse_qsl(body, keep_blank_values=True, max_num_fields=20))
    except ValueError:  # more fields than any form of ours has: not a form of ours
        return None
    secret_key = _services(request).settings.secret_key
    if not cookies.csrf_ok(request, secret_key, fields.get(cookies.CSRF_FIELD)):
        return None
    return {k: v.strip() if k not in ("password",) else v for k, v in fields.items()}


def _refused(request: Request, lang: str) -> Response:
    return _show(request, "refused.html", lang, 403, signed_in=False)


def _field_errors(error: ValidationError, values: dict[str, str], lang: str) -> Errors:
    found: Errors = []
    for item in error.errors():  # where, never what: the input is not repeated
        location = [str(part) for part in item.get("loc", ())]
        name = next((p for p in location if p in _FIELDS), "")
        if not name or any(name == known for known, _ in found):
            continue
        label = t(f"noun.{name}", lang)
        if not values.get(name):
            found.append((name, t("error.required", lang, field=label)))
        elif name == "password" and len(values.get(name, "")) < 12:
            found.append((name, t("error.short_password", lang)))
        else:
            found.append((name, t("error.invalid", lang, field=label)))
    return found or [("", t("error.unavailable", lang))]


_FIELDS = frozenset(
    {
        "login", "password", "code", "application_number", "family_name", "uci",
        "date_of_birth", "email", "membership_id",
    }
)  # fmt: skip


def _problem_errors(problem: Problem, lang: str) -> Errors:
    """What a refusal from the API's handlers says on the page."""
    if problem.status == 429:
        seconds = problem.headers.get("Retry-After", "60")
        return [("", t("error.rate_limited", lang, seconds=seconds))]
    if problem.status == 503:
        return [("", t("error.busy", lang))]
    if problem.slug == "invalid-credentials":
        return [("login", t("error.credentials", lang))]
    if problem.slug == "invalid-code":
        return [("code", t("error.code", lang))]
    if problem.slug == "weak-password":
        return [("password", t("error.weak_password", lang, reason=problem.detail or ""))]
    if problem.slug == "account-exists":
        return [("login", t("error.account_exists", lang))]
    return [("", t("error.unavailable", lang))]


async def _attempt(call: Callable[[], Awaitable[Any]], lang: str) -> tuple[Any, Errors]:
    try:
        return await call(), []
    except Problem as problem:
        return None, _problem_errors(problem, lang)


def _notice(request: Request) -> str | None:
    found = request.query_params.get("notice")
    return found if found in _NOTICES else None


# ---------------------------------------------------------------- entry points


def _start(request: Request, lang: str) -> str:
    return f"/{lang}/applications" if cookies.session_hash(request) else f"/{lang}/sign-in"


@router.get("/")
async def home(request: Request) -> Response:
    """The tracker's address: to the caller's language (French when the browser prefers it)."""
    accepted = request.headers.get("accept-language", "").lower()
    lang = "fr" if accepted.startswith("fr") else "en"
    return _redirect(_start(request, lang))


@router.get("/static/tracker.css")
async def stylesheet() -> Response:
    return Response(_CSS, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


@_page("GET", "/")
@_page("GET", "")
async def language_home(request: Request) -> Response:
    lang = _lang(request)
    return _redirect(_start(request, lang))


# ---------------------------------------------------------------- sign in and out


@_page("GET", "/sign-in")
async def sign_in_page(request: Request) -> Response:
    lang = _lang(request)
    return _show(
        request, "sign_in.html", lang, values={}, errors=[], notice=_notice(request),
        signed_in=False,
    )  # fmt: skip


@_page("POST", "/sign-in")
async def sign_in(request: Request) -> Response:
    lang = _lang(request)
    form = await _form(request)
    if form is None:
        return _refused(request, lang)
    values = {"login": form.get("login", "")}
    services = _services(request)
    try:
        credentials = models.Credentials(
            login=form.get("login", ""), password=form.get("password", "")
        )
    except ValidationError as e:
        errors = _field_errors(e, form, lang)
    else:
        answer, errors = await _attempt(
            lambda: sessions_api.sign_in(credentials, request, services), lang
        )
        if answer is not None:
            response = _redirect(f"/{lang}/applications")
            cookies.set_session(response, request, answer.token, services.settings.session_ttl)
            return response
    return _show(
        request, "sign_in.html", lang, _status(errors), values=values,
        errors=errors, notice=None, signed_in=False,
    )  # fmt: skip


@_page("GET", "/sign-out")
async def sign_out_page(request: Request) -> Response:
    """Signing out is a form (POST, with its CSRF token); this address only leads back."""
    return _redirect(_start(request, _lang(request)))


@_page("POST", "/sign-out")
async def sign_out(request: Request) -> Response:
    lang = _lang(request)
    form = await _form(request)
    if form is None:
        return _refused(request, lang)
    token = cookies.session_hash(request)
    services = _services(request)
    if token is not None:
        await services.accounts.revoke_session(token, services.settings.clock())
    response = _redirect(f"/{lang}/sign-in?notice=signed_out")
    cookies.clear_session(response, request)
    return response


# ---------------------------------------------------------------- create an account


@_page("GET", "/register")
async def register_page(request: Request) -> Response:
    lang = _lang(request)
    return _show(request, "register.html", lang, values={}, errors=[], signed_in=False)


@_page("POST", "/register")
async def register(request: Request) -> Response:
    lang = _lang(request)
    form = await _form(request)
    if form is None:
        return _refused(request, lang)
    role = form.get("role", "")
    own = ("email", "membership_id") if role == "representative" else ("uci", "date_of_birth")
    keys = ("application_number", "family_name", *own)
    fields: dict[str, Any] = {k: form.get(k, "") for k in keys}
    fields["application_number"] = fields["application_number"].upper()
    if role == "representative" and not fields["membership_id"]:
        fields.pop("membership_id")
    errors: Errors = []
    body: models.ApplicantRegistration | models.RepresentativeRegistration | None = None
    if role not in ("principal_applicant", "sponsor", "representative"):
        errors.append(("role", t("error.choose_role", lang)))
    else:
        try:
            body = _REGISTRATION.validate_python({"role": role, **fields})
        except ValidationError as e:
            errors = _field_errors(e, form, lang)
    if body is not None:
        services = _services(request)
        _, errors = await _attempt(lambda: accounts_api.register(body, request, services), lang)
        if not errors:
            return _redirect(f"/{lang}/register/verify?notice=code_sent")
    values = {k: v for k, v in form.items() if k != cookies.CSRF_FIELD}
    return _show(
        request, "register.html", lang, _status(errors), values=values, errors=errors,
        signed_in=False,
    )  # fmt: skip


@_page("GET", "/register/verify")
async def verify_page(request: Request) -> Response:
    lang = _lang(request)
    return _show(
        request, "new_password.html", lang, values={}, errors=[], notice=_notice(request),
        signed_in=False, kind="verify",
    )  # fmt: skip


@_page("POST", "/register/verify")
async def verify(request: Request) -> Response:
    return await _new_password(request, "verify")


# ---------------------------------------------------------------- reset a password


@_page("GET", "/reset")
async def reset_page(request: Request) -> Response:
    lang = _lang(request)
    return _show(request, "reset.html", lang, values={}, errors=[], signed_in=False)


@_page("POST", "/reset")
async def reset(request: Request) -> Response:
    lang = _lang(request)
    form = await _form(request)
    if form is None:
        return _refused(request, lang)
    try:
        body = models.ResetRequest(login=form.get("login", ""))
    except ValidationError as e:
        errors = _field_errors(e, form, lang)
    else:
        services = _services(request)
        _, errors = await _attempt(
            lambda: accounts_api.password_reset(body, request, services), lang
        )
        if not errors:
            return _redirect(f"/{lang}/reset/confirm?notice=reset_sent")
    return _show(
        request, "reset.html", lang, _status(errors), values={"login": form.get("login", "")},
        errors=errors, signed_in=False,
    )  # fmt: skip


@_page("GET", "/reset/confirm")
async def reset_confirm_page(request: Request) -> Response:
    lang = _lang(request)
    return _show(
        request, "new_password.html", lang, values={}, errors=[], notice=_notice(request),
        signed_in=False, kind="reset_confirm",
    )  # fmt: skip


@_page("POST", "/reset/confirm")
async def reset_confirm(request: Request) -> Response:
    return await _new_password(request, "reset_confirm")


async def _new_password(request: Request, kind: str) -> Response:
    """Verify (a new account) or reset_confirm (a new password): login, code, password."""
    lang = _lang(request)
    form = await _form(request)
    if form is None:
        return _refused(request, lang)
    services = _services(request)
    given = {k: form.get(k, "") for k in ("login", "code", "password")}
    try:
        if kind == "verify":
            verification = models.Verification(**given)
            call = lambda: accounts_api.verify(verification, request, services)  # noqa: E731
        else:
            confirmation = models.ResetConfirmation(**given)
            call = lambda: accounts_api.password_reset_confirm(  # noqa: E731
                confirmation, request, services
            )
    except ValidationError as e:
        errors = _field_errors(e, form, lang)
    else:
        _, errors = await _attempt(call, lang)
        if not errors:
            done = "created" if kind == "verify" else "reset"
            return _redirect(f"/{lang}/sign-in?notice={done}")
    return _show(
        request, "new_password.html", lang, _status(errors),
        values={"login": form.get("login", "")}, errors=errors, notice=None, signed_in=False,
        kind=kind,
    )  # fmt: skip


def _status(errors: Errors) -> int:
    return 400 if errors else 200


# ---------------------------------------------------------------- the caller's files


@_page("GET", "/applications")
async def applications(request: Request) -> Response:
    lang = _lang(request)
    services = _services(request)
    account, token = await _account(request)
    if account is None:
        return _signed_out(request, lang, token is not None)
    links = await services.accounts.links(account.account_id)
    files = [
        {
            **link,
            "status_text": page.status_text(link["status"], None, lang),
            "badge": page.badge(link["status"], None),
        }
        for link in links
    ]
    return _show(
        request, "applications.html", lang, files=files, signed_in=True, login=account.login
    )


@_page("GET", "/applications/{number}")
async def application(request: Request, number: str) -> Response:
    lang = _lang(request)
    services = _services(request)
    token = cookies.session_hash(request)
    if token is None:
        return _signed_out(request, lang, False)
    if not numbers.is_valid(number):
        return _show(request, "not_found.html", lang, 404, signed_in=True)
    now = services.settings.clock()
    try:
        file_read = await views.read(services, token, number, lang, now)
    except Problem as problem:
        if problem.status == 401:
            return _signed_out(request, lang, True)
        return _show(request, "not_found.html", lang, 404, signed_in=True)
    # The page is a function of the texts read and the day (and the estimate's figures,
    # checked apart): a file's page is rendered once per change, as the API answers 304
    # until then, and the key compares the texts themselves (no digest to collide).
    today = now.date()
    key = (request.scope["path"], file_read.role, file_read.language, today,
           file_read.view, file_read.history)  # fmt: skip
    found = render.cached(request, key)
    if found is not None:
        fingerprint = await views.estimate_fingerprint(
            services, found.estimate_of, today, file_read.language
        )
        if fingerprint == found.fingerprint:
            return render.answer(request, found.parts, services.settings.secret_key)
    history = file_read.history
    assert history is not None
    shown = await views.shown_view(services, file_read, number, now, None)
    shown.view["history"] = orjson.loads(history)
    parts = render.html(
        request, "application.html", lang, app=page.application(shown.view, lang),
        signed_in=True,
    )  # fmt: skip
    render.keep(request, key, render.Rendered(parts, shown.estimate_of, shown.fingerprint))
    return render.answer(request, parts, services.settings.secret_key)


# ---------------------------------------------------------------- account settings

_CHOICES = {"on": True, "off": False}  # the notifications radio's values


@_page("GET", "/settings")
async def settings_page(request: Request) -> Response:
    lang = _lang(request)
    account, token = await _account(request)
    if account is None:
        return _signed_out(request, lang, token is not None)
    return _settings(request, lang, account.notify, [], _notice(request))


@_page("POST", "/settings")
async def save_settings(request: Request) -> Response:
    """Opt out of change emails or back in: the API's PATCH /v1/accounts/me handler, called
    as a function (one code path), then back to the page with a confirmation (POST, redirect,
    GET: a reload does not post again)."""
    lang = _lang(request)
    form = await _form(request)
    if form is None:
        return _refused(request, lang)
    account, token = await _account(request)
    if account is None:
        return _signed_out(request, lang, token is not None)
    choice = _CHOICES.get(form.get("notifications", ""))
    if choice is None:
        errors = [("notifications", t("error.choose_notifications", lang))]
        return _settings(request, lang, account.notify, errors, None)
    body = models.MeUpdate(notifications=choice)
    saved, errors = await _attempt(
        lambda: accounts_api.update_me(body, account, _services(request)), lang
    )
    if errors:
        return _settings(request, lang, account.notify, errors, None)
    state = "on" if saved.notifications else "off"
    return _redirect(f"/{lang}/settings?notice=notifications_{state}")


def _settings(
    request: Request, lang: str, notify: bool, errors: Errors, notice: str | None
) -> Response:
    """The page: the setting as stored, and the radios as stored (none after an error)."""
    chosen = "" if errors else "on" if notify else "off"
    return _show(
        request, "settings.html", lang, _status(errors), notify=notify, chosen=chosen,
        errors=errors, notice=notice, signed_in=True, current="settings",
    )  # fmt: skip


async def _account(request: Request) -> tuple[Account | None, bytes | None]:
    """The signed-in account (None without a live session) and the session cookie's hash."""
    token = cookies.session_hash(request)
    if token is None:
        return None, None
    services = _services(request)
    return await services.accounts.session_account(token, services.settings.clock()), token


def _signed_out(request: Request, lang: str, expired: bool) -> Response:
    response = _redirect(f"/{lang}/sign-in" + ("?notice=expired" if expired else ""))
    if expired:
        cookies.clear_session(response, request)
    return response


@_page("GET", "/{rest:path}")
async def not_a_page(request: Request) -> Response:
    """A path under /en or /fr that names no page."""
    return _not_found(request, _lang(request))

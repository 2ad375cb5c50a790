"""The web pages' protections over HTTP: the session and CSRF cookies' flags, CSRF-less
posts refused, a strict Content-Security-Policy without inline script or style, no-store
on every page, and the API's own answers unchanged beside them."""

from __future__ import annotations

import re
from collections.abc import Callable
from http.cookies import SimpleCookie

from fastapi.testclient import TestClient

from adapters.http.web.render import CSP
from tests.api.conftest import (
    PASSWORD,
    Files,
    Mailbox,
    applicant_registration,
    bearer,
    sign_up,
)

PAGES = ("/en/sign-in", "/fr/sign-in", "/en/register", "/fr/register/verify", "/en/reset",
         "/fr/reset/confirm")  # fmt: skip


def _csrf(client: TestClient, lang: str = "en") -> str:
    page = client.get(f"/{lang}/sign-in")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def _cookie_flags(header: str) -> tuple[str, set[str]]:
    name = header.split("=", 1)[0]
    flags = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    samesite = re.search(r"samesite=(\w+)", header, re.IGNORECASE)
    if samesite:
        flags.add(f"samesite={samesite.group(1).lower()}")
    return name, flags


def test_pages_carry_a_strict_policy_and_no_inline_script_or_style(client: TestClient) -> None:
    assert "script" not in CSP and "unsafe" not in CSP
    assert "default-src 'none'" in CSP and "frame-ancestors 'none'" in CSP
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers.get_list("content-security-policy") == [CSP]
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        html = page.text
        assert "<script" not in html and " style=" not in html and "<style" not in html
        assert re.search(r'<html lang="(en|fr)">', html)
    css = client.get("/static/tracker.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_csrf_cookie_is_http_only_and_strict(client: TestClient) -> None:
    page = client.get("/en/sign-in")
    name, flags = _cookie_flags(page.headers["set-cookie"])
    assert name == "ct_csrf"
    assert {"httponly", "samesite=strict", "path"} <= flags
    assert "secure" not in flags  # plain HTTP here; see the TLS test


def test_over_tls_only_this_hosts_cookies_count(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> None:
    """Over TLS the cookies are named __Host-…, which a browser accepts only from this
    host, secure, for path /: a CSRF cookie planted by a sibling subdomain (or a plain-http
    answer) keeps the plain name, so its form token, which anyone can fetch, signs nobody
    in; nor does a planted session cookie sign the browser in as someone else."""
    client = make_client()
    number, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    token = sign_up(
        client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci
    )
    attacker = make_client()  # over plain http: the cookie and token a planter can get
    planted = _csrf(attacker)
    value = attacker.cookies["ct_csrf"]

    client.base_url = client.base_url.copy_with(scheme="https")  # type: ignore[assignment]
    client.cookies.clear()
    page = client.get("/en/sign-in")
    name, flags = _cookie_flags(page.headers["set-cookie"])
    assert name == "__Host-ct_csrf" and {"secure", "path"} <= flags and "domain" not in flags
    client.cookies.clear()
    client.cookies.set("ct_csrf", value)  # planted under the plain name
    form = {"login": uci, "password": PASSWORD, "csrf_token": planted}
    refused = client.post("/en/sign-in", data=form, follow_redirects=False)
    assert refused.status_code == 403 and "ct_session" not in refused.headers.get("set-cookie", "")
    client.cookies.clear()
    client.cookies.set("ct_session", token)  # a planted session is not this host's either
    assert client.get("/en/applications", follow_redirects=False).status_code == 303


def test_posts_without_a_matching_csrf_token_are_refused(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    token = sign_up(
        client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci
    )
    good = _csrf(client)
    form = {"login": uci, "password": PASSWORD}
    stranger = TestClient(client.app)  # no CSRF cookie of its own
    for path in ("/en/sign-in", "/en/register", "/en/reset", "/en/register/verify",
                 "/en/reset/confirm", "/en/sign-out", "/en/settings"):  # fmt: skip
        assert client.post(path, data=form).status_code == 403, path  # no token
        assert client.post(path, data={**form, "csrf_token": good[:-2] + "xx"}).status_code == 403
        assert stranger.post(path, data={**form, "csrf_token": good}).status_code == 403
    refused = client.post("/en/sign-in", data=form)
    assert "Your form expired" in refused.text and "ct_session" not in refused.headers.get(
        "set-cookie", ""
    )
    # JSON with the right token is not a form of ours either.
    assert client.post("/en/sign-in", json={**form, "csrf_token": good}).status_code == 403

    # A sign-out without the token leaves the session alone ...
    client.cookies.set("ct_session", token)
    assert client.post("/en/sign-out", data={}).status_code == 403
    assert client.get("/v1/applications", headers=bearer(token)).status_code == 200
    # ... with it, the session ends for the page and the API alike.
    out = client.post("/en/sign-out", data={"csrf_token": good}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/en/sign-in?notice=signed_out"
    assert client.get("/v1/applications", headers=bearer(token)).status_code == 401


def test_sign_in_sets_a_strict_http_only_session_cookie_secure_over_tls(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> None:
    client = make_client()
    number, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    sign_up(client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci)
    for tls in (False, True):
        if tls:
            client.base_url = client.base_url.copy_with(scheme="https")  # type: ignore[assignment]
            client.cookies.clear()
        done = client.post(
            "/en/sign-in",
            data={"login": uci, "password": PASSWORD, "csrf_token": _csrf(client)},
            follow_redirects=False,
        )
        assert done.status_code == 303 and done.headers["location"] == "/en/applications"
        name = "__Host-ct_session" if tls else "ct_session"  # over TLS: only this host's
        (session,) = [h for h in done.headers.get_list("set-cookie") if "ct_session" in h]
        _, flags = _cookie_flags(session)
        assert {"httponly", "samesite=strict", "path", "max-age"} <= flags
        assert ("secure" in flags) is tls
        assert "domain" not in flags
        cookie = SimpleCookie(session)[name].value
        assert client.get("/v1/applications", headers=bearer(cookie)).status_code == 200
        listed = client.get("/en/applications")
        assert listed.status_code == 200 and number in listed.text
        assert listed.headers["cache-control"] == "no-store"
        settings = client.get("/en/settings")  # signed in: the account's own page
        assert settings.status_code == 200 and "Email notifications are on" in settings.text
        assert settings.headers["cache-control"] == "no-store"
        assert settings.headers.get_list("content-security-policy") == [CSP]
        assert settings.headers["x-frame-options"] == "DENY"


def test_wrong_passwords_count_against_the_same_limits_as_the_api(
    make_client: Callable[..., TestClient], files: Files
) -> None:
    client = make_client()
    _, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    token = _csrf(client)
    waits = []
    for _ in range(8):
        page = client.post(
            "/en/sign-in", data={"login": uci, "password": "wrong guess", "csrf_token": token}
        )
        waits.append("Too many attempts" in page.text)
    assert waits[0] is False and waits[-1] is True  # the API's backoff, through the page
    api = client.post("/v1/sessions", json={"login": uci, "password": PASSWORD})
    assert api.status_code == 429  # one backoff for the page and the API


def test_the_api_still_answers_problems_and_pages_answer_html(client: TestClient) -> None:
    assert client.get("/v1/nothing-here").headers["content-type"] == "application/problem+json"
    assert client.get("/xx/sign-in").headers["content-type"] == "application/problem+json"
    missing = client.get("/fr/nothing-here")
    assert missing.status_code == 404 and "Page introuvable" in missing.text
    home = client.get("/", headers={"accept-language": "fr-CA,fr;q=0.9"}, follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/fr/sign-in"
    signed_out = client.get("/en/applications/F123456789", follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/en/sign-in"


def test_the_language_toggle_keeps_the_page_and_nothing_else_of_the_query(
    client: TestClient,
) -> None:
    page = client.get("/en/sign-in?notice=created&next=%22%3E%3Cscript%3Ex%3C/script%3E")
    assert 'href="/fr/sign-in?notice=created"' in page.text
    assert "<script" not in page.text and "next=" not in page.text
    odd = client.get("/fr/register?notice=%3Cb%3E")
    assert 'href="/en/register"' in odd.text and "<b>" not in odd.text

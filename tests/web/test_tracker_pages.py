"""The tracker in a browser, as a person uses it: create an account from the emailed code,
sign in, read the files in English and French, sign out; a sponsor sees only what a sponsor
may; another person's file is out of reach. Every page passes axe-core in both languages."""

from __future__ import annotations

import copy
import secrets
from typing import Any

import httpx

from projections import labels
from tests import cli_process
from tests.api.conftest import PASSWORD, add_event
from tests.web.conftest import Site, Visit


def _at(page: Any, ending: str) -> None:
    """Wait (bounded) until the page's address ends with ``ending``: a click's navigation
    may still be under way when the click returns."""
    page.wait_for_url(lambda url: url.endswith(ending), timeout=10_000)


def _register(visit: Visit, lang: str, number: str, payload: dict[str, Any], role: str) -> str:
    """Create the account through the forms, with the code read from the mail; the login."""
    page, site = visit.page, visit.site
    person = payload[role]
    before = len(site.mailbox.folder.messages())
    visit.go(f"/{lang}/register")
    page.check(f"input[name=role][value={role}]")
    page.fill("#f-application_number", number)
    if role == "representative":
        login = person["email"]
        page.fill("#f-family_name", person["name"].split()[-1])
        page.fill("#f-email", login)
        page.fill("#f-membership_id", person.get("membership_id") or "")
    else:
        login = person["uci"]
        page.fill("#f-family_name", person["family_name"])
        page.fill("#f-uci", login)
        page.fill("#f-date_of_birth", person["date_of_birth"])
    page.click("button[type=submit]")
    _at(page, f"/{lang}/register/verify?notice=code_sent")
    site.mailbox.wait(before + 1)
    code = site.mailbox.code()
    page.fill("#f-login", login)
    page.fill("#f-code", code)
    page.fill("#f-password", PASSWORD)
    page.click("button[type=submit]")
    _at(page, f"/{lang}/sign-in?notice=created")
    return str(login)


def _sign_in(visit: Visit, lang: str, login: str, password: str = PASSWORD) -> None:
    page = visit.page
    if f"/{lang}/sign-in" not in page.url:
        visit.go(f"/{lang}/sign-in")
    page.fill("#f-login", login)
    page.fill("#f-password", password)
    page.click("button[type=submit]")


def _api_view(site: Site, token: str, number: str, lang: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{site.url}/v1/applications/{number}?lang={lang}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


def test_applicant_creates_an_account_reads_the_file_in_both_languages_and_signs_out(
    visit: Any, site: Site
) -> None:
    number, payload = site.files.pick(
        representative=False, applicant_email=True, acknowledged=True, decided=False,
        language="en",
    )  # fmt: skip
    me = visit()
    page = me.page
    me.go("/")
    _at(page, "/en/sign-in")
    me.check("sign-in-en")
    page.keyboard.press("Tab")  # the first stop: the skip link, shown when focused
    skip = page.locator(".skip-link")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert skip.is_visible() and skip.bounding_box()["y"] >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.click("text=Create an account")
    me.check("register-en")
    login = _register(me, "en", number, payload, "principal_applicant")
    me.check("sign-in-created-en")

    _sign_in(me, "en", login)
    _at(page, "/en/applications")
    card = page.locator(".card")
    assert card.count() == 1
    assert number in card.inner_text() and "Principal applicant" in card.inner_text()
    me.check("applications-en")

    view = _api_view(site, me.session_token(), number, "en")
    page.click(f"a[href='/en/applications/{number}']")
    assert page.locator("h1").inner_text() == f"Application {number}"
    status = page.locator(".status-line .badge").inner_text()
    assert status.startswith(labels.text(f"status.{view['status']}", "en"))
    for activity, state in view["activities"].items():
        item = page.locator(f"#activity-{activity}").inner_text()
        assert labels.text(f"activity.{activity}", "en") in item
        assert labels.text(f"activity_status.{state}", "en") in item
    history = page.locator(".history > li")
    assert history.count() == len(view["history"])
    assert view["history"][-1]["title"] in history.first.inner_text()  # newest first
    standard = page.locator(".standard").inner_text()
    assert f"{view['days_elapsed']} of 365 days (service standard: 12 months)" in standard
    me.check("application-en")

    page.click("a[hreflang=fr]")  # the toggle keeps the page
    _at(page, f"/fr/applications/{number}")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("h1").inner_text() == f"Demande {number}"
    french = _api_view(site, me.session_token(), number, "fr")
    assert french["history"][0]["title"] in page.locator(".history").inner_text()
    assert labels.text("label.activities", "fr") in page.locator("#activities").inner_text()
    me.check("application-fr")
    page.click("a[hreflang=en]")
    _at(page, f"/en/applications/{number}")
    page.click("a[hreflang=fr]")

    page.click("text=Mes demandes")
    me.check("applications-fr")
    page.click("text=Se déconnecter")
    _at(page, "/fr/sign-in?notice=signed_out")
    assert "Vous êtes déconnecté." in page.locator("main").inner_text()
    me.check("sign-in-signed-out-fr")
    me.go(f"/fr/applications/{number}")
    _at(page, "/fr/sign-in")


def test_sponsor_sees_only_what_a_sponsor_may(visit: Any, site: Site) -> None:
    number, payload = site.files.pick(sponsor_email=True, acknowledged=True, decided=False)
    me = visit()
    page = me.page
    login = _register(me, "fr", number, payload, "sponsor")
    _sign_in(me, "fr", login)
    assert "Répondant" in page.locator(".card").inner_text()
    page.click(f"a[href='/fr/applications/{number}']")
    view = _api_view(site, me.session_token(), number, "fr")
    assert not {"activities", "next_steps", "documents", "estimate"} & set(view)
    main = page.locator("main").inner_text()
    for hidden in ("label.activities", "label.next_steps", "label.estimate"):
        assert labels.text(hidden, "fr") not in main
    for activity in ("medical", "biometrics", "background_check", "eligibility"):
        assert labels.text(f"activity.{activity}", "fr") not in main
    assert "En tant que répondant" in main
    assert page.locator(".history > li").count() == len(view["history"])
    me.check("application-sponsor-fr")
    page.click("a[hreflang=en]")
    assert "As the sponsor" in page.locator("main").inner_text()
    me.check("application-sponsor-en")


def test_a_representative_registers_with_their_email_and_sees_the_whole_file(
    visit: Any, site: Site
) -> None:
    number, payload = site.files.pick(representative=True, acknowledged=True)
    me = visit()
    _sign_in(me, "fr", _register(me, "fr", number, payload, "representative"))
    assert "Représentant autorisé" in me.page.locator(".card").inner_text()
    me.page.click(f"a[href='/fr/applications/{number}']")
    view = _api_view(site, me.session_token(), number, "fr")
    assert view["role"] == "representative"
    assert me.page.locator(".activity").count() == len(view["activities"])
    me.check("application-representative-fr")


def test_another_persons_file_is_not_reachable(visit: Any, site: Site) -> None:
    number, payload = site.files.pick(
        representative=False, applicant_email=True, acknowledged=True, language="fr"
    )
    other, _ = site.files.pick(exclude=(number,))
    me = visit()
    page = me.page
    login = _register(me, "en", number, payload, "principal_applicant")
    _sign_in(me, "en", login)
    theirs = me.go(f"/en/applications/{other}")
    assert theirs.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    said = page.locator("main").inner_text()
    me.check("not-found-en")
    nobody = me.go("/en/applications/Z999999999")
    assert nobody.status == 404
    assert page.locator("main").inner_text() == said  # nothing tells them apart
    me.go("/fr/applications/Z999999999")
    assert page.locator("h1").inner_text() == "Page introuvable"
    me.check("not-found-fr")
    # Without a session, the page is the sign-in form, whatever the file.
    signed_out = httpx.get(f"{site.url}/en/applications/{other}")
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/en/sign-in"


def test_wrong_password_and_weak_password_show_linked_error_summaries(
    visit: Any, site: Site
) -> None:
    me = visit()
    page = me.page
    for lang in ("en", "fr"):
        me.go(f"/{lang}/sign-in")
        _sign_in(me, lang, "12345678", "not the password at all")
        summary = page.locator(".error-summary")
        assert summary.is_visible()
        link = summary.locator("a[href='#f-login']")
        assert link.count() == 1
        assert page.locator("#f-login").get_attribute("aria-invalid") == "true"
        me.check(f"sign-in-error-{lang}")
        link.click()
        assert page.evaluate("document.activeElement.id") == "f-login"
    me.go("/en/register")
    page.click("button[type=submit]")
    summary = page.locator(".error-summary")
    assert summary.locator("a[href='#f-role']").count() == 1
    me.check("register-error-en")
    me.go("/fr/register/verify")
    page.fill("#f-login", "12345678")
    page.fill("#f-code", "12ab")
    page.fill("#f-password", "short")
    page.click("button[type=submit]")
    errors = page.locator(".error-summary a")
    assert {errors.nth(i).get_attribute("href") for i in range(errors.count())} == {
        "#f-code",
        "#f-password",
    }
    me.check("verify-error-fr")


def test_password_reset_through_the_pages(visit: Any, site: Site) -> None:
    _, model = site.files.pick(representative=False, applicant_email=True)
    number = f"F{secrets.randbelow(10**9):09d}"
    payload = copy.deepcopy(model)  # a file just received: nothing acknowledged yet
    payload["principal_applicant"]["uci"] = f"{secrets.randbelow(10**10):010d}"
    add_event(site.store, number, "application.received", payload)
    me = visit()
    page = me.page
    login = _register(me, "en", number, payload, "principal_applicant")
    _sign_in(me, "en", login)
    page.click(f"a[href='/en/applications/{number}']")
    assert "checking that the application is complete" in page.locator("main").inner_text()
    assert page.locator("#activities").count() == 0
    me.check("application-before-aor-en")

    other = visit()
    before = len(site.mailbox.folder.messages())
    other.go("/fr/reset")
    other.check("reset-fr")
    other.page.fill("#f-login", login)
    other.page.click("button[type=submit]")
    _at(other.page, "/fr/reset/confirm?notice=reset_sent")
    other.check("reset-confirm-fr")
    site.mailbox.wait(before + 1)
    new_password = "une toute autre phrase de passe"
    other.page.fill("#f-login", login)
    other.page.fill("#f-code", site.mailbox.code())
    other.page.fill("#f-password", new_password)
    other.page.click("button[type=submit]")
    _at(other.page, "/fr/sign-in?notice=reset")
    # The reset signed the first browser out.
    me.go("/en/applications")
    _at(page, "/en/sign-in?notice=expired")
    _sign_in(other, "fr", login, new_password)
    _at(other.page, "/fr/applications")


def test_the_sponsor_page_stays_whole_after_the_applicant_is_erased(visit: Any, site: Site) -> None:
    """The pages show no personal data (the views hold none): erasing the applicant
    leaves the sponsor's page as it was, and the applicant's account is gone."""
    number, payload = site.files.pick(
        representative=False, applicant_email=True, sponsor_email=True, decided=True
    )
    sponsor, applicant = visit(), visit()
    _sign_in(sponsor, "en", _register(sponsor, "en", number, payload, "sponsor"))
    applicant_login = _register(applicant, "en", number, payload, "principal_applicant")
    _sign_in(applicant, "en", applicant_login)
    _at(applicant.page, "/en/applications")
    applicant.go(f"/en/applications/{number}")  # rendered first: never served to the sponsor
    assert applicant.page.locator("#activities").count() == 1
    sponsor.go(f"/en/applications/{number}")
    before = sponsor.page.locator("main").inner_text()
    assert sponsor.page.locator("#activities").count() == 0

    erased = cli_process.run(
        ["privacy", "erase", "--person", "-", "--json"],
        site.cli_env,
        stdin=payload["principal_applicant"]["uci"] + "\n",
    )
    assert erased.returncode == 0, erased.stderr
    sponsor.page.reload()
    after = sponsor.page.locator("main").inner_text()
    assert after == before
    assert "[erased]" not in after
    sponsor.check("application-sponsor-after-erasure-en")
    applicant.go("/en/applications")
    _at(applicant.page, "/en/sign-in?notice=expired")
    _sign_in(applicant, "en", applicant_login)
    assert applicant.page.locator(".error-summary").is_visible()


def test_every_signed_out_page_passes_axe_in_both_languages(visit: Any, site: Site) -> None:
    me = visit()
    page = me.page
    for lang in ("en", "fr"):
        for path in ("sign-in", "register", "register/verify", "reset", "reset/confirm"):
            assert me.go(f"/{lang}/{path}").status == 200
            assert page.locator("html").get_attribute("lang") == lang
            me.check(f"{path.replace('/', '-')}-{lang}")
        assert me.go(f"/{lang}/no-such-page").status == 404
        me.check(f"no-such-page-{lang}")
        # A form whose CSRF cookie is gone (an old tab, a cleared browser) is refused.
        me.go(f"/{lang}/reset")
        me.context.clear_cookies()
        page.fill("#f-login", "12345678")
        with page.expect_navigation() as sent:
            page.click("button[type=submit]")
        assert sent.value.status == 403
        assert page.locator("h1").inner_text() in ("Your form expired", "Votre formulaire a expiré")
        me.check(f"refused-{lang}")

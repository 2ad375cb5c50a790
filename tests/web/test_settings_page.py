"""Account settings in a browser: a person turns change emails off through the form (the
account is opted out, as the API reads it, and a change to their file no longer emails
them), then back on (the next change does); a post without the form's CSRF token changes
nothing. The page passes axe-core in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

import httpx

from adapters.notifier import Notifier, NotifierSettings
from adapters.smtp import SmtpMailer, SmtpSettings
from adapters.webhook_client import WebhookClient
from tests.api.conftest import add_event
from tests.web.conftest import Site, Visit
from tests.web.test_tracker_pages import _at, _register, _sign_in


def _notifications(site: Site, token: str) -> bool:
    """Whether the account emails change notifications, as the API says."""
    me = httpx.get(f"{site.url}/v1/accounts/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    return bool(me.json()["notifications"])


@contextmanager
def _notifier(site: Site) -> Iterator[Notifier]:
    notifier = Notifier(
        NotifierSettings(site.store.url, site.store.schema, site.url, group_seconds=0),
        SmtpMailer(SmtpSettings(host="127.0.0.1", port=site.mailbox.port, timeout=5.0)),
        WebhookClient(allow_private=True, timeout=2.0),
    )
    try:
        yield notifier
    finally:
        notifier.close()


def _change_mails_to(site: Site, address: str) -> list[EmailMessage]:
    """The change notifications (not codes: their Message-ID is the notifier's) sent to
    ``address``."""
    return [
        message
        for message in site.mailbox.folder.messages()
        if str(message["To"]).lower() == address.lower()
        and str(message["Message-ID"]).endswith(".notify@casetrack.invalid>")
    ]


def _choose(visit: Visit, value: str) -> None:
    page = visit.page
    page.check(f"input[name=notifications][value={value}]")
    page.click("form.form button[type=submit]")


def test_opting_out_of_change_emails_and_back_in_through_the_page(visit: Any, site: Site) -> None:
    number, payload = site.files.pick(
        representative=False, applicant_email=True, acknowledged=True, decided=False,
        language="en",
    )  # fmt: skip
    address = payload["principal_applicant"]["email"]
    me = visit()
    page = me.page
    _sign_in(me, "en", _register(me, "en", number, payload, "principal_applicant"))
    _at(page, "/en/applications")
    page.click("text=Account settings")
    _at(page, "/en/settings")
    assert page.locator("h1").inner_text() == "Account settings"
    assert page.locator("nav a[aria-current=page]").inner_text() == "Account settings"
    assert "Email notifications are on" in page.locator("#notifications-state").inner_text()
    assert page.locator("#f-notifications").is_checked()

    _choose(me, "off")
    _at(page, "/en/settings?notice=notifications_off")
    alert = page.locator(".alert-success")
    assert "We will no longer email you" in alert.inner_text()
    assert "Email notifications are off" in page.locator("#notifications-state").inner_text()
    assert page.locator("#f-notifications-off").is_checked()
    me.check("settings-saved-off-en")
    assert _notifications(site, me.session_token()) is False

    with _notifier(site) as notifier:
        add_event(site.store, number, "correspondence.sent", {"subject": "A letter"})
        notifier.round()
        assert _change_mails_to(site, address) == []

        page.click("a[hreflang=fr]")  # the toggle keeps the page (and its notice)
        _at(page, "/fr/settings?notice=notifications_off")
        assert "Les avis par courriel sont désactivés" in page.locator("main").inner_text()
        _choose(me, "on")
        _at(page, "/fr/settings?notice=notifications_on")
        assert "Nous vous enverrons un courriel" in page.locator(".alert-success").inner_text()
        assert "Les avis par courriel sont activés" in page.locator("main").inner_text()
        me.check("settings-saved-on-fr")
        assert _notifications(site, me.session_token()) is True

        add_event(site.store, number, "correspondence.sent", {"subject": "Another letter"})
        notifier.round()
        [mail] = _change_mails_to(site, address)  # the second change only
        body = mail.get_body(("plain",))
        assert body is not None and f"/applications/{number}" in body.get_content()


def test_the_settings_form_refuses_a_post_without_its_token_and_asks_for_a_choice(
    visit: Any, site: Site
) -> None:
    number, payload = site.files.pick(representative=True, acknowledged=True)
    me = visit()
    page = me.page
    _sign_in(me, "fr", _register(me, "fr", number, payload, "representative"))
    _at(page, "/fr/applications")
    me.go("/fr/settings")
    assert page.locator("h1").inner_text() == "Paramètres du compte"
    me.check("settings-fr")
    token = me.session_token()

    # Without a choice: an error summary linked to the first radio, nothing changed.
    page.evaluate("document.querySelectorAll('input[name=notifications]')"
                  ".forEach(radio => { radio.checked = false; })")  # fmt: skip
    with page.expect_navigation() as sent:
        page.click("form.form button[type=submit]")
    assert sent.value.status == 400
    summary = page.locator(".error-summary")
    assert summary.locator("a[href='#f-notifications']").count() == 1
    assert "Indiquez si nous devons" in summary.inner_text()
    me.check("settings-error-fr")
    assert _notifications(site, token) is True

    # A post with the session cookie but not the form's token (another site's form, or
    # a tab whose CSRF cookie is gone) is refused, and the setting stays as it was.
    cookie = {"ct_session": token}
    forged = httpx.post(f"{site.url}/en/settings", data={"notifications": "off"}, cookies=cookie)
    assert forged.status_code == 403 and "Your form expired" in forged.text
    me.go("/fr/settings")
    me.context.clear_cookies(name="ct_csrf")
    page.check("#f-notifications-off")
    with page.expect_navigation() as sent:
        page.click("form.form button[type=submit]")
    assert sent.value.status == 403
    assert page.locator("h1").inner_text() == "Votre formulaire a expiré"
    assert _notifications(site, token) is True

    # Signed out, the page is the sign-in form, and a post changes nothing.
    signed_out = httpx.get(f"{site.url}/en/settings")
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/en/sign-in"

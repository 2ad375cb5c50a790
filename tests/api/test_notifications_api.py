"""Account settings (opting out of change emails and back in) and a representative's
webhook endpoints, through the API on real PostgreSQL and SMTP; a full round trip from
registration to a signed delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from adapters.notifier import Notifier, NotifierSettings
from adapters.smtp import SmtpMailer, SmtpSettings
from adapters.webhook_client import WebhookClient
from tests.api.conftest import (
    Files,
    Mailbox,
    add_event,
    applicant_registration,
    bearer,
    representative_registration,
    sign_up,
)
from tests.notify_fixtures import receiver


def _representative(client: TestClient, mailbox: Mailbox, files: Files) -> tuple[str, str]:
    number, payload = files.pick(representative=True, decided=False, acknowledged=True)
    login = payload["representative"]["email"].lower()
    token = sign_up(client, mailbox, representative_registration(number, payload), login)
    return number, token


def test_opting_out_and_back_in(client: TestClient, mailbox: Mailbox, files: Files) -> None:
    number, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    token = sign_up(
        client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci
    )
    me = client.get("/v1/accounts/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["notifications"] is True
    assert me.json()["login"] == uci and me.json()["kind"] == "client"
    off = client.patch("/v1/accounts/me", json={"notifications": False}, headers=bearer(token))
    assert off.status_code == 200 and off.json()["notifications"] is False
    assert client.get("/v1/accounts/me", headers=bearer(token)).json()["notifications"] is False
    on = client.patch("/v1/accounts/me", json={"notifications": True}, headers=bearer(token))
    assert on.json()["notifications"] is True
    assert (
        client.patch("/v1/accounts/me", json={"language": "fr"}, headers=bearer(token)).status_code
        == 422
    )
    assert client.patch("/v1/accounts/me", json={"notifications": False}).status_code == 401


def test_only_representatives_register_webhooks(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    token = sign_up(
        client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci
    )
    answer = client.post(
        "/v1/webhooks", json={"url": "https://93.184.215.14/hook"}, headers=bearer(token)
    )
    assert answer.status_code == 403
    assert client.get("/v1/webhooks").status_code == 401


def test_private_urls_are_refused_at_registration(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    _, token = _representative(client, mailbox, files)
    for url in ("http://93.184.215.14/hook", "https://10.0.0.1/x", "https://169.254.169.254/"):
        answer = client.post("/v1/webhooks", json={"url": url}, headers=bearer(token))
        assert answer.status_code == 422, url
        assert "10.0.0.1" not in answer.text and "169.254" not in answer.text


def test_register_list_delete_and_receive(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files, store: Any
) -> None:
    client = make_client(webhook_allow_private=True)
    number, token = _representative(client, mailbox, files)
    with receiver() as hooks:
        created = client.post(
            "/v1/webhooks",
            json={"url": hooks.url, "events": ["application.updated"]},
            headers=bearer(token),
        )
        assert created.status_code == 201, created.text
        webhook = created.json()
        assert webhook["secret"].startswith("whsec_")
        assert webhook["events"] == ["application.updated"]
        listed = client.get("/v1/webhooks", headers=bearer(token)).json()["webhooks"]
        assert listed == [{k: v for k, v in webhook.items() if k != "secret"}]
        hooks.secret = webhook["secret"]  # the receiver checks with the secret we were given
        add_event(store, number, "correspondence.sent", {"subject": "A letter"})
        notifier = Notifier(
            NotifierSettings(store.url, store.schema, "https://t.example", group_seconds=0),
            SmtpMailer(SmtpSettings(host="127.0.0.1", port=mailbox.port, timeout=5.0)),
            WebhookClient(allow_private=True, timeout=2.0),
        )
        notifier.round()
        [delivery] = hooks.wait(1)
        assert delivery.body["data"]["application_number"] == number
        assert delivery.body["data"]["change"]["history"]["title"] in (
            "We sent you a message",
            "Nous vous avons envoyé un message",
        )
        assert "A letter" not in str(delivery.body)  # the subject never leaves the log
        gone = client.delete(f"/v1/webhooks/{webhook['id']}", headers=bearer(token))
        assert gone.status_code == 204
        assert (
            client.delete(f"/v1/webhooks/{webhook['id']}", headers=bearer(token)).status_code == 404
        )
        assert client.get("/v1/webhooks", headers=bearer(token)).json() == {"webhooks": []}


def test_registering_webhooks_is_rate_limited(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> None:
    from dataclasses import replace

    from adapters.http.settings import Limit, Limits

    base = Limits()
    limits = replace(base, per_login_address={**base.per_login_address, "webhook": Limit(2, 3600)})
    client = make_client(limits=limits)
    _, token = _representative(client, mailbox, files)
    answers = [
        client.post("/v1/webhooks", json={"url": "https://10.0.0.1/x"}, headers=bearer(token))
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [422, 422, 429]

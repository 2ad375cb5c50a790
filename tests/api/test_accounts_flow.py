"""Register -> email -> verify -> sign in -> read, over a real SMTP server, in both languages."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
from fastapi.testclient import TestClient
from psycopg import sql

from tests.api.conftest import (
    PASSWORD,
    Files,
    Mailbox,
    applicant_registration,
    bearer,
    registered,
    representative_registration,
    sign_in,
    sign_up,
)


def test_applicant_registers_by_email_and_reads_the_file_in_english(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(
        representative=False, applicant_email=True, language="en", acknowledged=True
    )
    applicant = payload["principal_applicant"]
    token = sign_up(
        client,
        mailbox,
        applicant_registration(number, payload, "principal_applicant"),
        applicant["uci"],
    )
    (message,) = mailbox.wait(1)
    assert message["To"] == applicant["email"]
    assert "verification code" in message["Subject"]
    assert "valid for 12 hours" in message.get_body(("plain",)).get_content()

    listed = client.get("/v1/applications", headers=bearer(token)).json()
    assert listed["applications"][0]["application_number"] == number
    assert listed["applications"][0]["role"] == "principal_applicant"

    view = client.get(f"/v1/applications/{number}", headers=bearer(token)).json()
    assert view["application_number"] == number and view["lang"] == "en"
    assert {"activities", "next_steps", "documents", "history", "contact"} <= set(view)
    assert view["history"][0]["title"] == "We received your application"
    assert "web form" in view["contact"]["text"]


def test_french_file_gets_french_mail_and_french_views(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(
        representative=False, applicant_email=True, language="fr", acknowledged=True
    )
    uci = payload["principal_applicant"]["uci"]
    token = sign_up(
        client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci
    )
    (message,) = mailbox.wait(1)
    assert "code de vérification" in message["Subject"]
    assert "valide pendant 12 heures" in message.get_body(("plain",)).get_content()
    view = client.get(f"/v1/applications/{number}", headers=bearer(token)).json()
    assert view["lang"] == "fr"
    assert view["history"][0]["title"] == "Nous avons reçu votre demande"
    english = client.get(f"/v1/applications/{number}?lang=en", headers=bearer(token)).json()
    assert english["lang"] == "en" and english["history"][0]["title"].startswith("We received")
    history = client.get(f"/v1/applications/{number}/history", headers=bearer(token)).json()
    assert history["lang"] == "fr" and history["history"] == view["history"]


def test_applicant_code_goes_to_the_representative(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(representative=True)
    uci = payload["principal_applicant"]["uci"]
    sign_up(client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci)
    (message,) = mailbox.wait(1)
    assert message["To"] == payload["representative"]["email"]


def test_representative_registers_with_email_and_sees_everything(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(representative=True, acknowledged=True)
    email = payload["representative"]["email"]
    token = sign_up(client, mailbox, representative_registration(number, payload), email.upper())
    view = client.get(f"/v1/applications/{number}", headers=bearer(token)).json()
    assert view["role"] == "representative"
    assert {"activities", "next_steps", "documents"} <= set(view)


def test_sponsor_account_and_a_second_file_on_the_same_account(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(sponsor_email=True)
    uci = payload["sponsor"]["uci"]
    token = sign_up(client, mailbox, applicant_registration(number, payload, "sponsor"), uci)
    (message,) = mailbox.wait(1)
    assert message["To"] == payload["sponsor"]["email"]
    # Registering again (here: the same file) changes nothing; the code links from a session.
    client.post("/v1/accounts/register", json=applicant_registration(number, payload, "sponsor"))
    mailbox.wait(2)
    code = mailbox.code()
    again = {"login": uci, "code": code, "password": "another passphrase entirely"}
    assert client.post("/v1/accounts/verify", json=again).status_code == 409
    linked = client.post("/v1/accounts/link", json={"code": code}, headers=bearer(token))
    assert linked.status_code == 201
    listed = client.get("/v1/applications", headers=bearer(token)).json()["applications"]
    assert [a["application_number"] for a in listed] == [number]
    sign_in(client, uci)


def test_logout_revokes_the_token(client: TestClient, mailbox: Mailbox, files: Files) -> None:
    number, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    token = sign_up(
        client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci
    )
    other = sign_in(client, uci)
    assert client.delete("/v1/sessions/current", headers=bearer(token)).status_code == 204
    gone = client.get("/v1/applications", headers=bearer(token))
    assert gone.status_code == 401
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/v1/applications", headers=bearer(other)).status_code == 200


def test_password_reset_by_emailed_code_signs_out_everywhere(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(representative=False, applicant_email=True, language="fr")
    uci = payload["principal_applicant"]["uci"]
    token = sign_up(
        client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci
    )
    asked = client.post("/v1/accounts/password-reset", json={"login": uci})
    assert asked.status_code == 202
    message = mailbox.wait(2)[-1]
    assert "réinitialisation" in message["Subject"]
    new_password = "une toute autre phrase de passe"
    done = client.post(
        "/v1/accounts/password-reset/confirm",
        json={"login": uci, "code": mailbox.code(), "password": new_password},
    )
    assert done.status_code == 200, done.text
    assert client.get("/v1/applications", headers=bearer(token)).status_code == 401
    refused = client.post("/v1/sessions", json={"login": uci, "password": PASSWORD})
    assert refused.status_code == 401
    sign_in(client, uci, new_password)


def test_weak_password_is_refused_with_the_rule_and_the_code_survives(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    registration, code = registered(client, mailbox, files)
    uci = registration["uci"]
    weak = client.post(
        "/v1/accounts/verify", json={"login": uci, "code": code, "password": "abababababab"}
    )
    assert weak.status_code == 422
    assert weak.json()["type"] == "/problems/weak-password"
    assert "5 different characters" in weak.json()["detail"]
    short = client.post(
        "/v1/accounts/verify", json={"login": uci, "code": code, "password": "short"}
    )
    assert short.status_code == 422 and short.json()["errors"][0]["location"][-1] == "password"
    ok = client.post("/v1/accounts/verify", json={"login": uci, "code": code, "password": PASSWORD})
    assert ok.status_code == 201


def test_new_passwords_refuse_common_ones_and_the_family_name_on_file(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    registration, code = registered(client, mailbox, files)
    uci, family = registration["uci"], registration["family_name"]
    refused = [
        ("qwerty123456789", "too common"),
        ("football12345", "too common"),
        (f"{family.upper()} forever and ever", "login or name"),
    ]
    for password, rule in refused:
        weak = client.post(
            "/v1/accounts/verify", json={"login": uci, "code": code, "password": password}
        )
        assert weak.status_code == 422, (rule, weak.text)
        assert weak.json()["type"] == "/problems/weak-password"
        assert rule in weak.json()["detail"] and family not in weak.text
    ok = client.post("/v1/accounts/verify", json={"login": uci, "code": code, "password": PASSWORD})
    assert ok.status_code == 201
    client.post("/v1/accounts/password-reset", json={"login": uci})
    mailbox.wait(2)
    reset = client.post(
        "/v1/accounts/password-reset/confirm",
        json={"login": uci, "code": mailbox.code(), "password": f"new {family} passphrase"},
    )
    assert reset.status_code == 422 and "login or name" in reset.json()["detail"]


def _racing_sign_in(
    client: TestClient,
    mailbox: Mailbox,
    files: Files,
    reset_running: Callable[[], None] | None = None,
) -> int:
    """A sign-in with the old password, paused between its check and its session while the
    owner resets the password: until the reset is done, or until ``reset_running`` says it
    has got far enough. Returns the sign-in's status."""
    number, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    sign_up(client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci)
    assert client.post("/v1/accounts/password-reset", json={"login": uci}).status_code == 202
    mailbox.wait(2)
    found = client.app.state.services  # type: ignore[attr-defined]
    real_verify = found.passwords.verify
    checked, resume = threading.Event(), threading.Event()

    async def verify_then_pause(hashed: str | None, secret: str) -> bool:
        """The real check; the sign-in with the old password then waits for the reset."""
        right = bool(await real_verify(hashed, secret))
        if secret == PASSWORD:
            checked.set()
            await asyncio.to_thread(resume.wait, 10)
        return right

    found.passwords.verify = verify_then_pause
    new = {"login": uci, "code": mailbox.code(), "password": "an entirely different one"}
    with ThreadPoolExecutor(2) as pool:
        body = {"login": uci, "password": PASSWORD}
        racing = pool.submit(client.post, "/v1/sessions", json=body)
        assert checked.wait(10)
        reset = pool.submit(client.post, "/v1/accounts/password-reset/confirm", json=new)
        if reset_running is None:
            reset.result(timeout=10)
        else:
            reset_running()
        resume.set()
        answer = racing.result(timeout=10)
        done = reset.result(timeout=10)
    assert done.status_code == 200, done.text
    return answer.status_code


def test_a_sign_in_checked_before_a_reset_gets_no_session_after_it(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    """Whoever knows the old password and signs in while the owner resets it must not keep
    a session: the sign-in's check (old password right) and its new session straddle the
    reset, which signs out every session that exists when it runs."""
    status = _racing_sign_in(client, mailbox, files)
    assert status == 401, "no session for a password changed under the sign-in"


def test_a_sign_in_during_a_resets_transaction_gets_no_session(
    client: TestClient, mailbox: Mailbox, files: Files, database_url: str, schema: str
) -> None:
    """The session is stored after the reset signed every session out but before it
    committed: it must wait for the reset and then see the new password."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {s}.linger() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$;"
                " CREATE TRIGGER linger AFTER UPDATE ON {s}.sessions"
                " FOR EACH STATEMENT EXECUTE FUNCTION {s}.linger()"
            ).format(s=sql.Identifier(schema))
        )

        def reset_lingers() -> None:
            """Until the reset's transaction sleeps after signing every session out."""
            for _ in range(200):
                waiting = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                    " AND query LIKE %s",  # this test's schema: others may sleep too
                    (f'%"{schema}".sessions%',),
                ).fetchone()
                if waiting and waiting[0]:
                    return
                time.sleep(0.01)
            raise AssertionError("the reset never reached its sessions")

        status = _racing_sign_in(client, mailbox, files, reset_lingers)
    assert status == 401, "no session for a password changed under the sign-in"


def test_code_mails_carry_nothing_of_the_file(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    """A mailbox can be read by others (a shared address, a representative's office):
    the code mail names no file, person or status, to any role."""
    number, payload = files.pick(representative=False, applicant_email=True, sponsor_email=True)
    for role in ("principal_applicant", "sponsor"):
        registration = applicant_registration(number, payload, role)
        assert client.post("/v1/accounts/register", json=registration).status_code == 202
    messages = mailbox.wait(2)
    assert len(messages) == 2
    secrets = {number, number[1:]}
    for role in ("principal_applicant", "sponsor"):
        person = payload[role]
        secrets |= {person["uci"], person["family_name"], person["given_name"]}
    secrets |= {payload["category"]}
    for message in messages:
        text = (message["Subject"] + message.get_body(("plain",)).get_content()).lower()
        assert not [s for s in secrets if s.lower() in text]

"""One person, several files: holding one file's codes opens that file only, registering
never rewrites an existing account, and linking a file needs the account's session."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient

from consumers.file_ingest import ingest_lines
from projections.projector import Projector
from projections.registry import select
from tests.api.conftest import (
    PASSWORD,
    Files,
    Mailbox,
    applicant_registration,
    bearer,
    sign_in,
    sign_up,
)

ATTACKER_PASSWORD = "the representative's own passphrase"
REPRESENTATIVE = {"name": "Ravi Menon", "email": "ravi.menon@firm.example.org"}


def second_file(store: Any, payload: dict[str, Any], number: str) -> dict[str, Any]:
    """A new file for the same principal applicant, with a representative."""
    second = {**payload, "representative": REPRESENTATIVE}
    event = {
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "type": "application.received",
        "application_number": number,
        "occurred_at": "2024-02-01T10:00:00-05:00",
        "source": "gcms",
        "payload": second,
    }
    ingest_lines([json.dumps(event).encode()], "test", store)
    for projection in select(None):
        Projector(store, projection).catch_up()
    return second


def _files(client: TestClient, token: str) -> list[str]:
    listed = client.get("/v1/applications", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    return [a["application_number"] for a in listed.json()["applications"]]


def test_a_representative_with_one_files_codes_cannot_take_over_the_persons_account(
    client: TestClient, mailbox: Mailbox, files: Files, store: Any
) -> None:
    first, payload = files.pick(representative=False, applicant_email=True)
    applicant = payload["principal_applicant"]
    uci = applicant["uci"]
    owner = sign_up(
        client, mailbox, applicant_registration(first, payload, "principal_applicant"), uci
    )
    other = "Q000000001"
    second = second_file(store, payload, other)
    # The applicant's code for the represented file goes to the representative...
    assert (
        client.post(
            "/v1/accounts/register",
            json=applicant_registration(other, second, "principal_applicant"),
        ).status_code
        == 202
    )
    relayed = mailbox.wait(2)[-1]
    assert relayed["To"] == REPRESENTATIVE["email"]
    # ...who cannot use it to set a password on the applicant's existing account.
    taken = client.post(
        "/v1/accounts/verify",
        json={"login": uci, "code": mailbox.code(), "password": ATTACKER_PASSWORD},
    )
    assert taken.status_code == 409, taken.text
    assert taken.json()["type"] == "/problems/account-exists"
    refused = client.post("/v1/sessions", json={"login": uci, "password": ATTACKER_PASSWORD})
    assert refused.status_code == 401
    assert _files(client, owner) == [first], "the owner's session and files are untouched"
    sign_in(client, uci)
    # Reset codes still go to the owner's own address.
    assert client.post("/v1/accounts/password-reset", json={"login": uci}).status_code == 202
    assert mailbox.wait(3)[-1]["To"] == applicant["email"]


def test_linking_a_file_needs_the_accounts_session_and_that_files_code(
    client: TestClient, mailbox: Mailbox, files: Files, store: Any
) -> None:
    first, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    owner = sign_up(
        client, mailbox, applicant_registration(first, payload, "principal_applicant"), uci
    )
    other = "Q000000002"
    second = second_file(store, payload, other)
    client.post(
        "/v1/accounts/register", json=applicant_registration(other, second, "principal_applicant")
    )
    mailbox.wait(2)
    code = mailbox.code()  # forwarded by the representative to the applicant
    assert client.post("/v1/accounts/link", json={"code": code}).status_code == 401
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    bad = client.post("/v1/accounts/link", json={"code": wrong}, headers=bearer(owner))
    assert bad.status_code == 400 and bad.json()["type"] == "/problems/invalid-code"
    linked = client.post("/v1/accounts/link", json={"code": code}, headers=bearer(owner))
    assert linked.status_code == 201, linked.text
    assert linked.json() == {"application_number": other, "role": "principal_applicant"}
    assert _files(client, owner) == sorted([first, other])
    again = client.post("/v1/accounts/link", json={"code": code}, headers=bearer(owner))
    assert again.status_code == 400, "a code links once"


def test_a_code_issued_for_another_login_links_nothing(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    first, payload = files.pick(representative=False, applicant_email=True, sponsor_email=True)
    uci = payload["principal_applicant"]["uci"]
    owner = sign_up(
        client, mailbox, applicant_registration(first, payload, "principal_applicant"), uci
    )
    client.post("/v1/accounts/register", json=applicant_registration(first, payload, "sponsor"))
    mailbox.wait(2)
    sponsors_code = mailbox.code()
    answer = client.post("/v1/accounts/link", json={"code": sponsors_code}, headers=bearer(owner))
    assert answer.status_code == 400
    assert _files(client, owner) == [first]
    sponsor = payload["sponsor"]["uci"]
    created = client.post(
        "/v1/accounts/verify", json={"login": sponsor, "code": sponsors_code, "password": PASSWORD}
    )
    assert created.status_code == 201, "the sponsor's code still works for the sponsor"


def test_a_code_for_one_file_does_not_replace_the_persons_code_for_another(
    client: TestClient, mailbox: Mailbox, files: Files, store: Any
) -> None:
    first, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    second = second_file(store, payload, "Q000000003")
    client.post(
        "/v1/accounts/register", json=applicant_registration(first, payload, "principal_applicant")
    )
    own_code = mailbox.code()
    client.post(
        "/v1/accounts/register",
        json=applicant_registration("Q000000003", second, "principal_applicant"),
    )
    assert mailbox.wait(2)[-1]["To"] == REPRESENTATIVE["email"]
    relayed_code = mailbox.code()
    created = client.post(
        "/v1/accounts/verify", json={"login": uci, "code": own_code, "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    owner = sign_in(client, uci)
    assert _files(client, owner) == [first]
    linked = client.post("/v1/accounts/link", json={"code": relayed_code}, headers=bearer(owner))
    assert linked.status_code == 201
    assert _files(client, owner) == sorted([first, "Q000000003"])

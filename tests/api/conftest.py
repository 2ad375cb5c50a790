"""Fixtures for the tracker API: cases in a real PostgreSQL schema, a real SMTP server
(aiosmtpd) on loopback, an injectable clock and the app under a test client."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import http_app
from adapters.http.settings import ApiSettings, HasherCost
from adapters.smtp import SmtpMailer, SmtpSettings
from adapters.smtp_sink import MailFolder
from adapters.smtp_sink import start as start_sink
from consumers.file_ingest import ingest_lines
from projections.projector import Projector
from projections.registry import select
from simulation import casegen
from tests.vault import TEST_VAULT

FAST_HASHER = HasherCost(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery staple"
METRICS_TOKEN = "metrics-token-for-tests-0123456789abcdef"


class Clock:
    """The app's clock, moved by hand: expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    folder: MailFolder
    port: int

    def wait(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The first ``count`` messages, waiting for slow deliveries (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.folder.messages()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def code(self, index: int = -1) -> str:
        message = self.wait(abs(index) if index < 0 else index + 1)[index]
        body = message.get_body(("plain",))
        assert body is not None
        match = re.search(r"\b([0-9]{8})\b", body.get_content())
        assert match, "no code in the message"
        return match.group(1)


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    port = free_port()
    controller = start_sink(tmp_path / "mail", "127.0.0.1", port)
    try:
        yield Mailbox(controller.handler, port)
    finally:
        controller.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class Files:
    """What the test knows about the ingested files (from the generator's lines)."""

    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    types: dict[str, set[str]] = field(default_factory=dict)

    def pick(
        self,
        *,
        representative: bool | None = None,
        applicant_email: bool | None = None,
        sponsor_email: bool | None = None,
        language: str | None = None,
        acknowledged: bool | None = None,
        decided: bool | None = None,
        exclude: tuple[str, ...] = (),
    ) -> tuple[str, dict[str, Any]]:
        for number, payload in self.received.items():
            types = self.types[number]
            checks = (
                (representative, "representative" in payload),
                (applicant_email, "email" in payload["principal_applicant"]),
                (sponsor_email, "email" in payload["sponsor"]),
                (acknowledged, "application.acknowledged" in types),
                (decided, bool(types & {"decision.made", "application.withdrawn"})),
            )
            if number in exclude or any(w is not None and w != v for w, v in checks):
                continue
            if language is not None and payload["preferred_language"] != language:
                continue
            return number, payload
        raise LookupError("no generated file fits; change the seed or the count")


def load_files(store: Any, cases: int = 60, seed: int = 21) -> Files:
    lines = casegen.generate(cases, seed=seed)
    ingest_lines((line.encode() for line in lines), "test", store)
    for projection in select(None):
        Projector(store, projection).catch_up()
    files = Files()
    for line in lines:
        event = json.loads(line)
        number = event["application_number"]
        files.types.setdefault(number, set()).add(event["type"])
        if event["type"] == "application.received":
            files.received[number] = event["payload"]
    return files


@pytest.fixture
def files(store: Any) -> Files:
    return load_files(store)


def settings_for(
    database_url: str, schema: str, mailbox: Mailbox | None, clock: Clock, **overrides: Any
) -> ApiSettings:
    port = mailbox.port if mailbox else free_port()
    defaults: dict[str, Any] = {
        "mailer": SmtpMailer(SmtpSettings(host="127.0.0.1", port=port, timeout=5.0)),
        "clock": clock,
        "hasher": FAST_HASHER,
        "pool_min": 1,
        "pool_max": 4,
        "read_connections": 2,
        "metrics_token": METRICS_TOKEN,
        "vault": TEST_VAULT,
    }
    return ApiSettings(database_url=database_url, schema=schema, **{**defaults, **overrides})


@pytest.fixture
def make_client(
    database_url: str, schema: str, mailbox: Mailbox, clock: Clock
) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(address: str = "testclient", **overrides: Any) -> TestClient:
        """A client calling from ``address``; pass one ``secret_key`` to clients that must
        share rate-limit buckets (each app draws its own otherwise)."""
        app = http_app(settings_for(database_url, schema, mailbox, clock, **overrides))
        client = TestClient(app, raise_server_exceptions=False, client=(address, 50000))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


# ---------------------------------------------------------------- flows


def applicant_registration(number: str, payload: dict[str, Any], role: str) -> dict[str, Any]:
    person = payload[role]
    return {
        "application_number": number,
        "role": role,
        "family_name": person["family_name"],
        "uci": person["uci"],
        "date_of_birth": person["date_of_birth"],
    }


def representative_registration(number: str, payload: dict[str, Any]) -> dict[str, Any]:
    rep = payload["representative"]
    body = {
        "application_number": number,
        "role": "representative",
        "family_name": rep["name"].split()[-1],
        "email": rep["email"],
    }
    if rep.get("membership_id"):
        body["membership_id"] = rep["membership_id"]
    return body


def registered(client: TestClient, mailbox: Mailbox, files: Files) -> tuple[dict[str, Any], str]:
    """A file's principal applicant registered (a file with their email and no
    representative): the registration sent, and the code mailed for it."""
    number, payload = files.pick(representative=False, applicant_email=True)
    registration = applicant_registration(number, payload, "principal_applicant")
    client.post("/v1/accounts/register", json=registration)
    return registration, mailbox.code()


def sign_up(client: TestClient, mailbox: Mailbox, registration: dict[str, Any], login: str) -> str:
    """Register, read the code from the mail, verify and sign in; returns the token."""
    before = len(mailbox.folder.messages())
    assert client.post("/v1/accounts/register", json=registration).status_code == 202
    mailbox.wait(before + 1)
    code = mailbox.code()
    answer = client.post(
        "/v1/accounts/verify", json={"login": login, "code": code, "password": PASSWORD}
    )
    assert answer.status_code == 201, answer.text
    return sign_in(client, login)


def sign_in(client: TestClient, login: str, password: str = PASSWORD) -> str:
    answer = client.post("/v1/sessions", json={"login": login, "password": password})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def outbox_done(client: TestClient) -> None:
    """Wait (bounded) until the app's outbox has done every job queued so far."""
    outbox = client.app.state.services.outbox  # type: ignore[attr-defined]
    client.portal.call(asyncio.wait_for, outbox.join(), 10)  # type: ignore[union-attr]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_event(store: Any, number: str, event_type: str, payload: dict[str, Any]) -> None:
    """Ingest one more event for file ``number`` now, and bring every view up to it."""
    line = {
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "type": event_type,
        "application_number": number,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "gcms",
        "payload": payload,
    }
    assert ingest_lines([json.dumps(line).encode()], "test-extra", store).accepted == 1
    for projection in select(None):
        Projector(store, projection).catch_up()

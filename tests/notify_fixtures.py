"""What the notification tests share: a real webhook receiver on loopback that checks
every signature with the Standard Webhooks reference library (``standardwebhooks``,
written by others), accounts linked to files, and events fed in and projected."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from psycopg.sql import SQL, Identifier
from standardwebhooks import Webhook

from adapters.postgres.event_store import CaseStore
from consumers.file_ingest import ingest_lines
from domain import webhook_signature
from domain.application_number import case_id
from projections.projector import Projector
from projections.registry import select
from tests.stores import rows

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class Received:
    message_id: str
    body: dict[str, Any]


@dataclass
class Receiver:
    """Answers ``statuses`` in turn (then 200); keeps every verified delivery."""

    secret: str
    statuses: list[int] = field(default_factory=list)
    deliveries: list[Received] = field(default_factory=list)
    refused: int = 0  # requests whose signature did not verify
    answered: list[int] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/casetrack"

    def ids(self) -> list[str]:
        with self.lock:
            return [d.message_id for d in self.deliveries]

    def wait(self, count: int, timeout: float = 15.0) -> list[Received]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.deliveries) >= count:
                    break
            time.sleep(0.02)
        with self.lock:
            return list(self.deliveries)


@contextmanager
def receiver(statuses: list[int] | None = None) -> Iterator[Receiver]:
    box = Receiver(webhook_signature.new_secret(), list(statuses or []))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps connections open: the client reuses them

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k: v for k, v in self.headers.items()}
            try:
                payload = Webhook(box.secret).verify(body, headers)
            except Exception:
                with box.lock:
                    box.refused += 1
                self._answer(400)
                return
            with box.lock:
                status = box.statuses.pop(0) if box.statuses else 200
                if status == 200:
                    box.deliveries.append(Received(headers["webhook-id"], payload))
            self._answer(status)

        def _answer(self, status: int) -> None:
            with box.lock:
                box.answered.append(status)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


def link(
    store: CaseStore,
    number: str,
    role: str,
    *,
    email: str | None = None,
    language: str = "en",
    notify: bool = True,
    at: datetime = LONG_AGO,
) -> int:
    """An account (representatives' by email, others' by a made-up UCI) linked to a file."""
    kind = "representative" if role == "representative" else "client"
    login = (
        f"{uuid.uuid4().hex[:10]}@rep.example"
        if kind == "representative"
        else (str(uuid.uuid4().int)[:10])
    )
    with store.datastore.transaction(commit=True) as curs:
        s = Identifier(store.schema)
        curs.execute(
            SQL(
                "INSERT INTO {}.accounts (login, kind, email, language, password_hash,"
                " created_at, password_changed_at, notify) VALUES (%s, %s, %s, %s, '!', %s, %s, %s)"
                " RETURNING account_id"
            ).format(s),
            (login, kind, email or f"{login}.mail@example.org", language, at, at, notify),
        )
        row = curs.fetchone()
        assert row is not None
        account_id = int(row["account_id"])
        curs.execute(
            SQL(
                "INSERT INTO {}.account_links (account_id, application_number, case_id, role,"
                " linked_at) VALUES (%s, %s, %s, %s, %s)"
            ).format(s),
            (account_id, number, case_id(number), role, at),
        )
    return account_id


def add_endpoint(
    store: CaseStore, account_id: int, url: str, secret: str, events: list[str] | None = None
) -> int:
    with store.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL(
                "INSERT INTO {}.webhook_endpoints (account_id, url, events, secret, created_at)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING endpoint_id"
            ).format(Identifier(store.schema)),
            (
                account_id,
                url,
                events or ["application.status_changed", "application.updated"],
                secret,
                LONG_AGO,
            ),
        )
        row = curs.fetchone()
        assert row is not None
        return int(row["endpoint_id"])


def line(number: str, event_type: str, payload: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "schema_version": 1,
            "type": event_type,
            "application_number": number,
            "occurred_at": datetime.now(UTC).isoformat(),
            "source": "gcms",
            "payload": payload,
        }
    ).encode()


def received_payload(language: str = "en", representative: bool = True) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "category": "spouse",
        "received_on": "2024-02-01",
        "principal_applicant": {
            "uci": "7316402958",
            "given_name": "Amara",
            "family_name": "Okonkwo-Lindqvist",
            "date_of_birth": "1990-02-03",
            "email": "amara@example.org",
        },
        "sponsor": {
            "uci": "58204719",
            "given_name": "Teodor",
            "family_name": "Lindqvist",
            "date_of_birth": "1988-05-06",
            "email": "teodor@example.org",
        },
        "preferred_language": language,
    }
    if representative:
        payload["representative"] = {"name": "Marc Pelletier", "email": "mp@law.example"}
    return payload


def feed(store: CaseStore, *lines: bytes) -> None:
    """Ingest the lines and bring every view (notifications too) up to them."""
    result = ingest_lines(list(lines), "test", store)
    assert result.accepted == len(lines), result
    project(store)


def project(store: CaseStore) -> None:
    for projection in select(None):
        Projector(store, projection).catch_up()


def outbox(store: CaseStore, channel: str | None = None) -> list[Any]:
    if channel is None:
        return rows(store, "SELECT * FROM {schema}.notify_outbox ORDER BY id")
    return rows(
        store, "SELECT * FROM {schema}.notify_outbox WHERE channel = %s ORDER BY id", (channel,)
    )

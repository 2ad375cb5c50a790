"""Registration's slow work (matching, hashing, storing, mailing) runs off the request's
path: neither the answer nor the next request on the same connection waits for it, so a
match cannot be told from a miss by timing. A real SMTP client talks to a server that
stalls."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import http_app
from tests.api.conftest import Clock, Files, Mailbox, applicant_registration, settings_for


class StalledSmtp:
    """Accepts SMTP connections and says nothing until released: a mail server that hangs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.connected = threading.Event()
        self.released = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.released.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._held.append(conn)
            self.connected.set()

    def release(self) -> None:
        if self.released.is_set():
            return
        self.released.set()
        for conn in self._held:
            conn.close()
        self.sock.close()


@pytest.fixture
def stalled() -> Iterator[StalledSmtp]:
    server = StalledSmtp()
    yield server
    server.release()


@pytest.fixture
def client(database_url: str, schema: str, stalled: StalledSmtp) -> Iterator[TestClient]:
    mailbox = Mailbox(folder=None, port=stalled.port)  # type: ignore[arg-type]
    app = http_app(settings_for(database_url, schema, mailbox, Clock()))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
        stalled.release()  # the queued mail then fails at once, not at its timeout


def test_a_match_holds_up_neither_its_answer_nor_the_next_request(
    client: TestClient, stalled: StalledSmtp, files: Files
) -> None:
    """The test client, like any server that reads a connection's next request only once
    the app has returned, waits for the whole ASGI call: work after the answer counts."""
    number, payload = files.pick(representative=False, applicant_email=True)
    match = applicant_registration(number, payload, "principal_applicant")
    miss = {**match, "family_name": match["family_name"] + "x"}
    for body in (miss, match):
        started = time.monotonic()
        assert client.post("/v1/accounts/register", json=body).status_code == 202
        assert client.get("/healthz").status_code == 200
        assert time.monotonic() - started < 2.0
    assert stalled.connected.wait(10), "the match's code does go to the mail server"

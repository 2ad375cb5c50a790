"""`casetrack notify` stopped with SIGTERM while a batch of slow webhook deliveries is in
hand: it finishes the delivery in flight and stops, within the bound of one delivery,
not of the batch; what it did not send stays due and is sent by the next notifier."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from adapters.kafka_broker import free_port
from adapters.postgres.event_store import CaseStore
from domain.webhook_signature import new_secret
from tests.cli_process import running, stop_with_sigterm
from tests.notify_fixtures import add_endpoint, feed, line, link, outbox, received_payload

NUMBER = "F700000003"
SLOW = 1.0  # seconds a delivery takes


@contextmanager
def slow_receiver() -> Iterator[tuple[str, list[float]]]:
    """A webhook receiver that takes SLOW seconds to answer 200: its URL, and the times
    it answered."""
    answered: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            time.sleep(SLOW)
            answered.append(time.monotonic())
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", answered
    finally:
        server.shutdown()
        server.server_close()


def test_sigterm_stops_between_deliveries_of_a_batch(
    store: CaseStore, cli_env: dict[str, str]
) -> None:
    feed(store, line(NUMBER, "application.received", received_payload()))
    endpoints = 10
    env = {
        **cli_env,
        "CASETRACK_SMTP_PORT": str(free_port()),  # no mail server: mail pauses, hooks go on
        "CASETRACK_NOTIFY_GROUP_SECONDS": "0",
        "CASETRACK_WEBHOOK_ALLOW_PRIVATE": "1",
    }
    with slow_receiver() as (url, answered):
        for _ in range(endpoints):
            add_endpoint(store, link(store, NUMBER, "representative"), url, new_secret())
        with running(["notify", "--workers", "1"], env) as proc:
            feed(store, line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}))
            deadline = time.monotonic() + 30
            while len(answered) < 2:
                assert time.monotonic() < deadline, "no delivery began"
                time.sleep(0.05)
            stop_with_sigterm(proc, within=SLOW * 5)  # the batch would take SLOW * 8 more
        sent = len(answered)
        assert sent < endpoints and len(outbox(store, "webhook")) == endpoints
        with running(["notify", "--workers", "4"], env) as proc:
            deadline = time.monotonic() + 60
            while len(answered) < endpoints:
                assert time.monotonic() < deadline, f"{len(answered)} of {endpoints} sent"
                time.sleep(0.1)
            stop_with_sigterm(proc, within=SLOW * 5)
    assert {r["state"] for r in outbox(store, "webhook")} == {"sent"}

"""A webhook receiver cannot hold a notifier's sending thread longer than the delivery
timeout (docs/notifications.md: CASETRACK_WEBHOOK_TIMEOUT_SECONDS), however it answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from adapters.webhook_client import DeliveryFailed, WebhookClient

DRIP_SECONDS = 6.0


# What the receiver sends at once before dripping: over http, a status line and the start
# of a header; over https, the head of a 16 kB TLS handshake record (the client's TLS
# handshake waits for the whole record; the ssl module bounds a handshake as a whole).
_OPENINGS = {"http": b"HTTP/1.1 200 OK\r\nx-slow: ", "https": b"\x16\x03\x03\x40\x00"}


@pytest.fixture(params=sorted(_OPENINGS))
def dripping(request: pytest.FixtureRequest) -> Iterator[str]:
    """A receiver that sends its opening at once, then one more byte every 0.3 s: each
    read comes well within the client's timeout, the answer never ends soon."""
    scheme: str = request.param
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)  # the request, or the TLS client hello
                conn.sendall(_OPENINGS[scheme])
                deadline = time.monotonic() + DRIP_SECONDS
                while time.monotonic() < deadline and not stop.is_set():
                    try:
                        conn.sendall(b"a")
                    except OSError:
                        break
                    time.sleep(0.3)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"{scheme}://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    thread.join(5)
    server.close()


def test_a_dripping_receiver_cannot_hold_a_delivery_past_its_timeout(dripping: str) -> None:
    client = WebhookClient(allow_private=True, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match="TimeoutError"):
        client.post(dripping, b"{}", {})
    client.close()
    assert time.monotonic() - started < 3.0  # the timeout (1 s) and some slack


@pytest.fixture
def dripping_body() -> Iterator[str]:
    """A receiver whose head says ``connection: close`` (http.client then hands the socket
    to the response and drops its own reference), then drips the body a byte every 0.3 s."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                deadline = time.monotonic() + DRIP_SECONDS
                while time.monotonic() < deadline and not stop.is_set():
                    try:
                        conn.sendall(b"a")
                    except OSError:
                        break
                    time.sleep(0.3)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    thread.join(5)
    server.close()


def test_a_body_dripped_after_connection_close_is_cut_at_the_timeout(dripping_body: str) -> None:
    """Once the head says connection: close, HTTPConnection.getresponse sets its
    ``sock`` to None (the response reads on), so _cut finds no socket to shut and the
    delivery lasts as long as the receiver drips (up to the 64 kB read)."""
    client = WebhookClient(allow_private=True, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match="TimeoutError"):
        client.post(dripping_body, b"{}", {})
    client.close()
    assert time.monotonic() - started < 3.0

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

# What a receiver sends at once before dripping, by case: (scheme, opening).
_OPENINGS = {
    # A status line and the start of a header.
    "http head": ("http", b"HTTP/1.1 200 OK\r\nx-slow: "),
    # A whole head saying connection: close, then the body: http.client hands the socket
    # to the response and drops its own reference (HTTPConnection.sock is None).
    "http body after connection: close": ("http", b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"),
    # The head of a 16 kB TLS handshake record: the client's handshake waits for the
    # whole record (the ssl module bounds a handshake as a whole).
    "https handshake": ("https", b"\x16\x03\x03\x40\x00"),
}


@pytest.fixture(params=sorted(_OPENINGS))
def dripping(request: pytest.FixtureRequest) -> Iterator[str]:
    """A receiver that sends its opening at once, then one more byte every 0.3 s: each
    read comes well within the client's timeout, the answer never ends soon."""
    scheme, opening = _OPENINGS[request.param]
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
                conn.sendall(opening)
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

"""The webhook client keeps a receiver's connection for the next delivery, and goes on
with a new one when the receiver closed the kept one meanwhile."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters import webhook_client
from adapters.webhook_client import DeliveryFailed, WebhookClient


class Receiver:
    def __init__(self, drop_idle: bool) -> None:
        self.requests = 0
        self.connections = 0
        self.drop_idle = drop_idle


@pytest.fixture(params=[False, True], ids=["keeps", "drops-idle"])
def receiver(request: pytest.FixtureRequest) -> Iterator[tuple[str, Receiver]]:
    box = Receiver(drop_idle=request.param)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            box.connections += 1

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            box.requests += 1
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()
            # an idle timeout: closed after answering, without saying so
            self.close_connection = box.drop_idle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", box
    server.shutdown()
    server.server_close()


def test_connections_are_kept_and_renewed(receiver: tuple[str, Receiver]) -> None:
    url, box = receiver
    client = WebhookClient(allow_private=True, timeout=2)
    for _ in range(5):
        assert client.post(url, b"{}", {}) == 204
    client.close()
    assert box.requests == 5  # each delivery once, whatever happened to the connection
    assert box.connections == (5 if box.drop_idle else 1)


class _ElapsingTimer(threading.Timer):
    """A delivery deadline whose interval elapses just as the answer is read: the timer's
    thread has passed its "not cancelled" check when the sender cancels it (Timer.cancel
    then does nothing, as documented), and it shuts the socket a moment later."""

    def run(self) -> None:
        self.finished.wait()  # the interval "elapses" as cancel() is called
        time.sleep(0.05)  # the thread was past its check: the action runs anyway
        self.function(*self.args, **self.kwargs)


def test_a_deadline_that_fires_as_a_delivery_ends_does_not_spoil_the_next_one(
    receiver: tuple[str, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timer already running _cut when the delivery cancels it must not shut the socket
    of a connection kept for the next delivery: that one, to a healthy receiver, would fail
    (DeliveryFailed: TimeoutError) and count against the endpoint."""
    url, _ = receiver
    client = WebhookClient(allow_private=True, timeout=2)
    with monkeypatch.context() as patched:
        patched.setattr(webhook_client.threading, "Timer", _ElapsingTimer)
        with contextlib.suppress(DeliveryFailed):  # at its deadline: may fail (time is up)
            client.post(url, b"{}", {})
        time.sleep(0.2)  # the late timer has run
    assert client.post(url, b"{}", {}) == 204
    client.close()

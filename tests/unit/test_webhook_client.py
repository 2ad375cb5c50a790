"""The webhook client keeps a receiver's connection for the next delivery, and goes on
with a new one when the receiver closed the kept one meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters.webhook_client import WebhookClient


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

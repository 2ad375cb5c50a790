"""Webhook URLs that would reach private networks are refused (SSRF), at registration and
at delivery, unless CASETRACK_WEBHOOK_ALLOW_PRIVATE; redirects are never followed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from adapters.webhook_client import DeliveryFailed, UrlRefused, WebhookClient, check_url

REFUSED = [
    "http://example.com/hook",  # plain http outside loopback
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://10.1.2.3/hook",
    "https://172.16.0.9/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data",  # cloud metadata: link-local
    "https://100.64.0.1/hook",  # shared address space
    "https://0.0.0.0/hook",
    "https://[::1]/hook",
    "https://[fe80::1]/hook",
    "https://[fd00::1]/hook",
    "https://[::ffff:10.0.0.1]/hook",  # IPv4-mapped private
    "https://224.0.0.1/hook",
    "https://user:pass@93.184.215.14/hook",
    "ftp://93.184.215.14/hook",
    "https:///nohost",
    "https://no-such-host.invalid/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        check_url(url)
    assert "pass" not in str(refused.value)  # never echoes the URL's parts


def test_public_https_addresses_pass() -> None:
    target = check_url("https://93.184.215.14:8443/hooks?x=1")
    assert (target.host, target.port, target.path) == ("93.184.215.14", 8443, "/hooks?x=1")


def test_every_resolved_address_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolving to a public and a private address (or rebinding to a private one
    at delivery time) is refused."""
    import socket

    answers = {"mixed.example": ["93.184.215.14", "10.0.0.5"], "public.example": ["93.184.215.14"]}

    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[object]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    check_url("https://public.example/hook")
    with pytest.raises(UrlRefused):
        check_url("https://mixed.example/hook")
    answers["public.example"] = ["127.0.0.1"]  # DNS rebinding after registration
    with pytest.raises(UrlRefused):
        WebhookClient().post("https://public.example/hook", b"{}", {})


def test_loopback_only_with_allow_private_and_http_only_there() -> None:
    assert check_url("http://127.0.0.1:9/hook", allow_private=True).scheme == "http"
    assert check_url("https://10.0.0.1/hook", allow_private=True).host == "10.0.0.1"
    with pytest.raises(UrlRefused):
        check_url("http://10.0.0.1/hook", allow_private=True)  # http beyond loopback


@pytest.fixture
def redirecting() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("location", "http://169.254.169.254/latest/meta-data")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_redirects_are_not_followed(redirecting: str) -> None:
    with pytest.raises(DeliveryFailed, match="HTTP 307"):
        WebhookClient(allow_private=True, timeout=2).post(redirecting, b"{}", {})

"""Webhook deliveries over HTTP(S), refusing what would make casetrack a proxy into
private networks (SSRF).

A URL must be ``https``, or ``http`` to a loopback host; no credentials in it. Its host
is resolved and EVERY address checked: private, loopback, link-local, multicast,
reserved, unspecified, shared (100.64/10) and IPv4-mapped versions of these are refused
unless ``allow_private`` (CASETRACK_WEBHOOK_ALLOW_PRIVATE=1: tests, `make run`). The check
runs at registration and again at each delivery, and the connection goes to the address
that was checked (the Host header and the TLS name are the URL's host): a DNS answer
that changes between check and connect (rebinding) cannot redirect it. Redirects are
not followed (a 3xx is a failure), and each delivery has a short timeout: for each read,
and for the whole exchange (a receiver that answers a byte at a time is cut off).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not receive webhooks; the message says why (never the URL's path)."""


class DeliveryFailed(RuntimeError):
    """The receiver could not be reached, or did not answer 2xx."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IpAddress, ...]


def _public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:  # fec0::/10: deprecated, still routed inside some sites
            return False
        if address.sixtofour is not None and not _public(address.sixtofour):
            return False  # 6to4 (2002::/16) of a private, loopback... IPv4 address
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def check_url(url: str, allow_private: bool = False, resolve: bool = True) -> Target:
    """The checked target of ``url``, or UrlRefused."""
    if len(url) > 2000:
        raise UrlRefused("the URL is too long")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("the URL is not valid") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UrlRefused("the URL must be https://host/...")
    if parts.username or parts.password:
        raise UrlRefused("the URL must not hold credentials")
    if parts.fragment:
        raise UrlRefused("the URL must not have a fragment")
    host = parts.hostname.rstrip(".").lower()
    addresses = _resolve(host, port or 443) if resolve else ()
    loopback_host = host in _LOOPBACK_NAMES or (
        bool(addresses) and all(a.is_loopback for a in addresses)
    )
    if parts.scheme == "http" and not loopback_host:
        raise UrlRefused("webhooks use https (plain http only to a loopback address)")
    if not allow_private and (loopback_host or not all(_public(a) for a in addresses)):
        raise UrlRefused("the host resolves to a private, loopback or reserved address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, host, port or default, path, addresses)


def _resolve(host: str, port: int) -> tuple[IpAddress, ...]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        return (literal,)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UrlRefused("the host does not resolve") from None
    found: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UrlRefused("the host does not resolve")
    return tuple(found)


def _connected(address: str, port: int, timeout: float) -> socket.socket:
    """A socket to the checked address. No Nagle: http.client sends a request's head and
    body in two writes, and on a kept connection the body would wait for the receiver's
    delayed ACK of the head (40 ms)."""
    sock = socket.create_connection((address, port), timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _Pinned(http.client.HTTPConnection):
    """HTTP to a checked address, whose socket a delivery's deadline can shut (_cut)."""

    def __init__(self, host: str, address: str, port: int, timeout: float, **tls: Any) -> None:
        super().__init__(host, port, timeout=timeout, **tls)
        self._address = address
        self._seconds = timeout
        self.expired = False
        self.wire: socket.socket | None = None  # the last socket connected, for _cut

    def connect(self) -> None:
        self.sock = self.wire = self._wrap(_connected(self._address, self.port, self._seconds))
        if self.expired:
            raise TimeoutError

    def _wrap(self, sock: socket.socket) -> socket.socket:
        return sock


class _PinnedHttps(_Pinned, http.client.HTTPSConnection):
    """HTTPS to a checked address, with the URL's host for SNI and the certificate."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, address, port, timeout, context=ssl.create_default_context())

    def _wrap(self, sock: socket.socket) -> socket.socket:
        # The handshake is bounded on its own: the ssl module keeps one deadline for it.
        return self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _cut(connection: _Pinned) -> None:
    """The delivery's time is up: shut its socket (the thread blocked reading it wakes to
    an end of stream) and mark it, so that a connection still being made gives up."""
    connection.expired = True
    # Not connection.sock: once a head says "connection: close", http.client drops that
    # reference and the response reads the body on its own (the socket stays open).
    sock = connection.wire
    if sock is not None:
        with contextlib.suppress(OSError):  # the plain socket's, under any TLS layer
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class WebhookClient:
    """Posts deliveries; keeps a receiver's connection open for the next delivery to it
    (the address is checked again each time: a kept connection is reused only while the
    host still resolves to the address it was opened to). For one thread."""

    def __init__(self, allow_private: bool = False, timeout: float = 5.0, keep: int = 32) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.keep = keep
        self._kept: dict[tuple[str, str, int, str], _Pinned] = {}

    def check(self, url: str) -> Target:
        return check_url(url, self.allow_private)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body``; the status when 2xx, else DeliveryFailed (UrlRefused when the URL
        now resolves somewhere it may not go)."""
        target = self.check(url)
        key = (target.scheme, target.host, target.port, str(target.addresses[0]))
        connection = self._kept.pop(key, None)
        reused = connection is not None
        try:
            if connection is None:
                connection = self._open(key)
            try:
                status, keep = _request(connection, target.path, body, headers, self.timeout)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                # The receiver closed the kept connection while it was idle: once more on a
                # new one (if it had taken the request, the same webhook-id is its cue).
                connection.close()
                connection = self._open(key)
                status, keep = _request(connection, target.path, body, headers, self.timeout)
        except (OSError, http.client.HTTPException) as e:
            if connection is not None:
                connection.close()
            raise DeliveryFailed(f"{target.host}: {type(e).__name__}") from None
        if keep and len(self._kept) < self.keep:
            self._kept[key] = connection
        else:
            connection.close()
        if not 200 <= status < 300:
            raise DeliveryFailed(f"{target.host}: HTTP {status}")
        return status

    def _open(self, key: tuple[str, str, int, str]) -> _Pinned:
        scheme, host, port, address = key
        if scheme == "https":
            return _PinnedHttps(host, address, port, self.timeout)
        return _Pinned(host, address, port, self.timeout)

    def close(self) -> None:
        for connection in self._kept.values():
            connection.close()
        self._kept.clear()


def _request(
    connection: _Pinned, path: str, body: bytes, headers: dict[str, str], seconds: float
) -> tuple[int, bool]:
    """(status, whether the connection may be kept), within ``seconds`` in all: the
    socket's timeout bounds each read only, and a receiver that drips its answer a byte at
    a time would hold this sending thread for as long as it likes (TimeoutError)."""
    deadline = threading.Timer(seconds, _cut, (connection,))
    deadline.daemon = True
    deadline.start()
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={
                **headers,
                "content-type": "application/json",
                "user-agent": "casetrack-webhooks/1",
            },
        )
        response = connection.getresponse()
        response.read(64 * 1024)
    except (OSError, http.client.HTTPException):
        if connection.expired:
            raise TimeoutError from None
        raise
    finally:
        deadline.cancel()
        # A timer already past its wait runs _cut anyway: wait for it, so that a socket
        # it shuts is never kept (nor reused) as if whole.
        deadline.join()
    if connection.expired:  # an answer cut short can look whole (headers, then the end)
        raise TimeoutError
    return response.status, not response.will_close and response.isclosed()

"""A proxy in front of the embedded broker: it terminates TLS (as a load balancer or a
TLS-only listener of a real cluster would) and reads the Kafka requests going by.

The broker advertises the proxy's address (EmbeddedBroker(advertised=...)), so every
connection a client makes, the bootstrap one and those to the partition leaders, goes
through it. What the clients sent is decoded just enough to show how they
authenticated: SaslHandshake's mechanism and SaslAuthenticate's bytes, with the answers.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from adapters.kafka_broker import HOST, free_port

SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36


@dataclass
class Request:
    """One request a client sent: its API, version, client id and (for SASL) payload."""

    api_key: int
    version: int
    correlation_id: int
    client_id: str
    mechanism: str | None = None  # SaslHandshake
    auth_bytes: bytes | None = None  # SaslAuthenticate
    answer: bytes | None = None  # SaslAuthenticate's response auth_bytes
    answer_error: int | None = None


@dataclass
class Session:
    """One client connection: its TLS handshake's outcome and the requests sent on it."""

    tls_error: str | None = None
    client_certificate: dict[str, object] | None = None
    requests: list[Request] = field(default_factory=list)


class KafkaProxy:
    """Listens on ``HOST:port``; with ``tls`` (a server context) terminates TLS there."""

    def __init__(self, target: tuple[str, int], tls: ssl.SSLContext | None = None) -> None:
        self.target = target
        self.tls = tls
        self.port = free_port()
        self.sessions: list[Session] = []
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def requests(self) -> list[Request]:
        with self._lock:
            return [r for s in self.sessions for r in s.requests]

    def start(self) -> KafkaProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            doomed, self._sockets = self._sockets, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for s in doomed:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def __enter__(self) -> KafkaProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        session = Session()
        with self._lock:
            self.sessions.append(session)
        if self.tls is not None:
            client.settimeout(10)
            try:
                client = self.tls.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError) as e:
                session.tls_error = str(e)
                client.close()
                return
            client.settimeout(None)
            session.client_certificate = client.getpeercert() or None  # type: ignore[assignment]
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            if self._listener is None:
                client.close()
                upstream.close()
                return
            self._sockets |= {client, upstream}
        pending: dict[int, Request] = {}
        threading.Thread(
            target=self._pump,
            args=(client, upstream, _Requests(session, pending, self._lock), _Answers(pending)),
            daemon=True,
        ).start()

    def _pump(
        self, client: socket.socket, upstream: socket.socket, requests: _Frames, answers: _Frames
    ) -> None:
        """Both directions on one thread: an SSL socket must not be read and written from
        two threads at once."""
        routes = {client: (upstream, requests), upstream: (client, answers)}
        try:
            while True:
                ready: list[socket.socket] = []
                if isinstance(client, ssl.SSLSocket) and client.pending():
                    ready = [client]
                if not ready:
                    ready, _, _ = select.select([client, upstream], [], [], 1.0)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    sink, reader = routes[source]
                    reader.feed(data)
                    sink.sendall(data)
        except (OSError, ValueError):  # ValueError: select on a socket closed by stop()
            pass
        finally:
            for s in (client, upstream):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._sockets -= {client, upstream}


class _Frames:
    """Kafka's framing: a 4-byte size, then the message."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 4:
            (size,) = struct.unpack(">i", self._buffer[:4])
            if len(self._buffer) < 4 + size:
                return
            frame, self._buffer = self._buffer[4 : 4 + size], self._buffer[4 + size :]
            with suppress(Exception):  # a frame this reader does not follow is passed on
                self.frame(frame)

    def frame(self, frame: bytes) -> None:
        raise NotImplementedError


class _Requests(_Frames):
    def __init__(self, session: Session, pending: dict[int, Request], lock: threading.Lock):
        super().__init__()
        self.session, self.pending, self.lock = session, pending, lock

    def frame(self, frame: bytes) -> None:
        api_key, version, correlation_id, id_length = struct.unpack(">hhih", frame[:10])
        at = 10 + max(id_length, 0)
        request = Request(api_key, version, correlation_id, frame[10:at].decode())
        if api_key == SASL_HANDSHAKE:  # v0-1, not flexible: a string
            (length,) = struct.unpack(">h", frame[at : at + 2])
            request.mechanism = frame[at + 2 : at + 2 + length].decode()
        elif api_key == SASL_AUTHENTICATE:
            if version >= 2:  # flexible: tagged fields, then compact bytes
                at += 1  # no tagged fields in the header
                length, at = _uvarint(frame, at)
                request.auth_bytes = frame[at : at + length - 1]
            else:
                (length,) = struct.unpack(">i", frame[at : at + 4])
                request.auth_bytes = frame[at + 4 : at + 4 + length]
            self.pending[correlation_id] = request
        with self.lock:
            self.session.requests.append(request)


class _Answers(_Frames):
    """SaslAuthenticate's responses, matched to their requests by correlation id."""

    def __init__(self, pending: dict[int, Request]) -> None:
        super().__init__()
        self.pending = pending

    def frame(self, frame: bytes) -> None:
        (correlation_id,) = struct.unpack(">i", frame[:4])
        request = self.pending.pop(correlation_id, None)
        if request is None:
            return
        at = 4
        if request.version >= 2:
            at += 1  # response header v1: no tagged fields
            (request.answer_error,) = struct.unpack(">h", frame[at : at + 2])
            length, at = _uvarint(frame, at + 2)  # error message, compact nullable string
            at += max(length - 1, 0)
            length, at = _uvarint(frame, at)
            request.answer = frame[at : at + length - 1]
        else:
            (request.answer_error,) = struct.unpack(">h", frame[at : at + 2])
            (length,) = struct.unpack(">h", frame[at + 2 : at + 4])
            at += 4 + max(length, 0)
            (length,) = struct.unpack(">i", frame[at : at + 4])
            request.answer = frame[at + 4 : at + 4 + length]


def write_pems(ca: trustme.CA, directory: Path, prefix: str = "") -> dict[str, str]:
    """A client's files: the CA certificate, a client certificate and its key (PEM)."""
    client = ca.issue_cert("casetrack-consumer")
    files = {
        "ca": directory / f"{prefix}ca.pem",
        "cert": directory / f"{prefix}client.pem",
        "key": directory / f"{prefix}client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    return {name: str(path) for name, path in files.items()}


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    """The proxy's side: a certificate for ``names``, and a client certificate required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7

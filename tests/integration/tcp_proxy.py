"""A database outage without touching the database: a TCP proxy in front of it."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from adapters.kafka_broker import free_port


class TcpProxy:
    """A loopback TCP forwarder that a test cuts (every connection dropped, new ones
    refused) and restores: a database outage without touching the database.

    It stands in front of the server ``database_url`` names: a TCP port, or
    PostgreSQL's Unix socket when the host is a directory (as the embedded server
    gives); ``url`` reaches the same database through the proxy. The backend process
    ids are read from the server's BackendKeyData message as it passes, so
    ``terminate_backends`` kills the sessions behind this proxy and only those.
    """

    def __init__(self, database_url: str) -> None:
        target = conninfo_to_dict(database_url)
        self.database_url = database_url
        self.target = (str(target.get("host") or "127.0.0.1"), int(target.get("port") or 5432))
        self.port = free_port()
        self.url = make_conninfo(database_url, host="127.0.0.1", port=self.port)
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._backends: set[int] = set()
        self._lock = threading.Lock()

    def _connect_upstream(self) -> socket.socket:
        host, port = self.target
        if not host.startswith("/"):
            return socket.create_connection(self.target)
        upstream = socket.socket(socket.AF_UNIX)
        try:
            upstream.connect(f"{host}/.s.PGSQL.{port}")
        except OSError:
            upstream.close()
            raise
        return upstream

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            doomed, self._sockets = self._sockets, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()
        for s in doomed:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    restore = start
    close = cut

    def terminate_backends(self) -> int:
        """pg_terminate_backend on the server sessions behind this proxy, and only those."""
        with self._lock:
            pids, self._backends = list(self._backends), set()
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)",
                (pids,),
            ).fetchall()
        return len(rows)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets |= {client, upstream}
            for a, b, server in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(a, b, server), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        seen: bytes | None = b""  # the server's first bytes, until its BackendKeyData went by
        try:
            while data := source.recv(65536):
                if from_server and seen is not None:
                    seen += data
                    at = seen.find(b"K\x00\x00\x00\x0c")  # type K, length 12: pid, secret
                    if at >= 0 and len(seen) >= at + 9:
                        with self._lock:
                            self._backends.add(int.from_bytes(seen[at + 5 : at + 9], "big"))
                        seen = None
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._sockets -= {source, sink}

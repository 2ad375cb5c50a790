"""Liveness and readiness over HTTP for the daemons that serve nothing else (`casetrack
consume`, `notify`, `project`), as an orchestrator probes them: off unless a port is
given (``--probe-port``, CASETRACK_PROBE_PORT).

- ``GET /livez``: 200 while the main loop made progress within ``live_seconds``, else
  503 (restart me). Progress is seen without touching the loops: each of them checks
  its stop event every turn (``while not stop.is_set()``) and waits on it between
  retries, so the stop event handed to them (``Heartbeat``) notes the time. A loop
  waiting out a database or broker outage still turns: it stays live (a restart would
  not bring the database back), but not ready.
- ``GET /readyz``: 200 when live and every check passes (each a connection to a
  dependency, bounded at ``CHECK_TIMEOUT`` seconds, made at each probe); else 503 with
  the name of what failed (never an address or an error text).

The server is a thread of the daemon's own process, so a process that stops turning
(a call that never returns) answers /livez 503, and one that is frozen whole answers
nothing, which a probe counts as a failure too.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import structlog

log = structlog.get_logger("casetrack.probes")

CHECK_TIMEOUT = 3  # seconds per dependency check
LIVE_SECONDS = 60.0  # over the longest pause between turns: the 30 s retry backoff


class Heartbeat(threading.Event):
    """A stop event that notes when the loop polling it last turned."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.last = clock()

    def is_set(self) -> bool:
        self.last = self.clock()
        return super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        self.last = self.clock()
        try:
            return super().wait(timeout)
        finally:
            self.last = self.clock()


Check = Callable[[], bool]


@dataclass
class Probes:
    heartbeat: Heartbeat
    checks: Sequence[tuple[str, Check]] = ()
    live_seconds: float = LIVE_SECONDS
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def live(self) -> bool:
        return self.heartbeat.clock() - self.heartbeat.last <= self.live_seconds

    def failing(self) -> list[str]:
        """What stops the daemon being ready: "stalled", or the checks that failed."""
        if not self.live():
            return ["stalled"]
        with self._lock:  # a burst of probes costs one round of checks at a time
            return [name for name, check in self.checks if not _passes(check)]


def _passes(check: Check) -> bool:
    try:
        return check()
    except Exception:  # an unreachable dependency, whatever the client raises
        return False


def database(url: str) -> Check:
    """The database answers a query (a connection of its own, bounded)."""

    def check() -> bool:
        with psycopg.connect(url, connect_timeout=CHECK_TIMEOUT, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True

    return check


def broker(bootstrap_servers: str) -> Check:
    """Some bootstrap server accepts a TCP connection (the client's own protocol, TLS and
    SASL included, is the consumer's business: it logs and retries what fails there)."""

    def check() -> bool:
        for server in bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                socket.create_connection((host.strip("[]"), int(port)), CHECK_TIMEOUT).close()
            except (OSError, ValueError):
                continue
            return True
        return False

    return check


class _Handler(BaseHTTPRequestHandler):
    probes: Probes  # set on the subclass made per server

    def do_GET(self) -> None:
        if self.path == "/livez":
            live = self.probes.live()
            self._answer(200 if live else 503, {"status": "ok" if live else "stalled"})
        elif self.path == "/readyz":
            failing = self.probes.failing()
            body: dict[str, object] = {"status": "ok"}
            if failing:
                body = {"status": "unavailable", "failing": failing}
            self._answer(503 if failing else 200, body)
        else:
            self._answer(404, {"status": "no such probe"})

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # probes every few seconds are not worth a log line


def serve(probes: Probes, port: int, host: str = "") -> ThreadingHTTPServer:
    """The probe server on ``host:port`` (every address by default: the orchestrator
    probes the pod's), answering from a daemon thread; ``shutdown()``
    it when done (the process exiting ends it too)."""
    handler = type("Handler", (_Handler,), {"probes": probes})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    log.info("probes listening", port=port)
    return server


def add_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--probe-port", type=_port, metavar="PORT",
        help="answer GET /livez and /readyz on this port (default CASETRACK_PROBE_PORT; none)",
    )  # fmt: skip


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError("a port between 1 and 65535")
    return int(text)


def stop_event(port: int | None, checks: Sequence[tuple[str, Check]]) -> threading.Event:
    """The stop event a daemon's loop runs on: with a ``port``, a Heartbeat whose probes
    are served there; without one, a plain Event (no probes)."""
    if port is None:
        return threading.Event()
    heartbeat = Heartbeat()
    serve(Probes(heartbeat, checks), port)
    return heartbeat

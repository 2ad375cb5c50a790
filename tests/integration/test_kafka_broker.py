"""The embedded development broker: a clear failure on a taken port, and a clean exit on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.kafka_broker import BrokerError, EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_start_fails_clearly_when_another_process_holds_the_port() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        broker = EmbeddedBroker(other.getsockname()[1])
        with pytest.raises(BrokerError, match="in use"):
            broker.start()
        assert not broker.running


def test_module_exits_1_when_the_port_is_taken() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = str(other.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "adapters.kafka_broker", "--port", port],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert b"listening" not in done.stdout
    assert b"in use" in done.stderr


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a command started with ``&``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("background", [False, True], ids=["foreground", "background"])
def test_module_exits_on_sigterm(background: bool) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.kafka_broker", "--port", str(port)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_ignore_sigint if background else None,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert f"listening on 127.0.0.1:{port}" in line, line
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        with socket.socket() as s:  # the broker went with it
            s.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""`casetrack serve` as a child process in a process group of its own (its workers with
it), for the tests of several API processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import httpx

from tests import cli_process
from tests.api.conftest import METRICS_TOKEN, Mailbox, free_port


def env_for(cli_env: dict[str, str], mailbox: Mailbox | None = None) -> dict[str, str]:
    env = {**cli_env, "CASETRACK_METRICS_TOKEN": METRICS_TOKEN}
    if mailbox is not None:
        env |= {
            "CASETRACK_SMTP_HOST": "127.0.0.1",
            "CASETRACK_SMTP_PORT": str(mailbox.port),
            "CASETRACK_SMTP_TLS": "none",
        }
    return env


def wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.communicate()[1].decode()[-2000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not come up")


@contextmanager
def serving(env: dict[str, str], *more: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`casetrack serve` on a free port, in a process group of its own: whatever is still
    running when the block ends (the server, its workers) is killed."""
    port = free_port()
    process = subprocess.Popen(
        [*cli_process.CASETRACK, "serve", "--port", str(port), *more],
        env=env, cwd=cli_process.ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_up(port, process)
        yield port, process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()

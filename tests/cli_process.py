"""`casetrack` in a child process, as an operator runs it: from the repository root, with
the environment given (the ``cli_env`` fixture points it at the test's schema)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
CASETRACK = [sys.executable, "-m", "adapters.cli.main"]

Output = int | IO[bytes]  # a file, or subprocess.DEVNULL, PIPE or STDOUT


@contextmanager
def running(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    stdout: Output = subprocess.DEVNULL,
    stderr: Output = subprocess.PIPE,
) -> Iterator[subprocess.Popen[bytes]]:
    """`casetrack ARGS` started; a process still running when the block ends is killed."""
    command = [*CASETRACK, *args]
    proc = subprocess.Popen(
        command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def run(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run to the end (with ``stdin`` as its input, if given); its output as text."""
    command = [*CASETRACK, *args]
    return subprocess.run(
        command,
        env=env,
        cwd=ROOT,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stop_with_sigterm(proc: subprocess.Popen[bytes], within: float = 30.0) -> bytes:
    """SIGTERM ``proc`` and check it exits 0 within ``within`` seconds; its stderr."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=within + 5)
    assert proc.returncode == 0, (stderr or b"").decode()[-2000:]
    assert time.monotonic() - started < within, "SIGTERM honoured too late"
    return stderr or b""

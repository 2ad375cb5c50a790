"""`casetrack serve --workers N` (processes sharing one port, their metrics summed) and
SIGTERM: requests in hand finish within --shutdown-seconds, then exit 0."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from contextlib import suppress

import httpx
import pytest

from tests.api.conftest import METRICS_TOKEN, bearer
from tests.api.serve_process import env_for, serving


def _counted(metrics: str, route: str) -> float:
    pattern = rf'casetrack_http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*\}} (\S+)'
    return sum(float(value) for value in re.findall(pattern, metrics))


def _served_by(port: int, workers: list[int]) -> int | None:
    """GET /healthz on a new connection; the worker process that answered it (the one
    holding the connection's server end), found through /proc."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() and connection.sock is not None
        client_port = connection.sock.getsockname()[1]
        with open("/proc/net/tcp") as table:
            inodes = [
                fields[9]
                for fields in (line.split() for line in table.readlines()[1:])
                if int(fields[1].split(":")[1], 16) == port
                and int(fields[2].split(":")[1], 16) == client_port
            ]
        for pid in workers:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in {f"socket:[{i}]" for i in inodes}:
                        return pid
        return None
    finally:
        connection.close()


def test_workers_share_one_port_and_their_metrics_add_up(cli_env: dict[str, str]) -> None:
    """``--workers 2``: two processes accept on one port; a scrape, which reaches one of
    them, counts the requests both answered; SIGTERM stops the supervisor and both."""
    env = env_for(cli_env)
    with serving(env, "--workers", "2") as (port, process):
        workers = _children(process.pid)
        assert len(workers) == 2, workers
        answered: list[int | None] = []
        deadline = time.monotonic() + 60
        while len(set(answered) - {None}) < 2 or len(answered) < 20:  # the second may be late
            assert time.monotonic() < deadline, f"one worker answered everything: {answered}"
            answered.append(_served_by(port, workers))
        url = f"http://127.0.0.1:{port}/metrics"
        scrapes = [httpx.get(url, headers=bearer(METRICS_TOKEN)) for _ in range(6)]
        assert {s.status_code for s in scrapes} == {200}
        assert [_counted(s.text, "/healthz") for s in scrapes] == [len(answered)] * 6

        # SIGTERM: the supervisor stops both workers, each finishing what it holds.
        sock, rest = _half_a_sign_in(port)
        time.sleep(0.5)  # the request reached the app, which waits for the rest of the body
        process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        sock.sendall(rest)
        assert _answer(sock).startswith(b"HTTP/1.1 401 ")
        sock.close()
        _exits_0(process, within=20)
    assert not [pid for pid in workers if _alive(pid)], "a worker outlived the server"


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    found = [int(line) for line in out.split()]
    # uvicorn's spawn context adds a resource tracker: the workers are the ones serving.
    return [p for p in found if "resource_tracker" not in _cmdline(p)]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def _half_a_sign_in(port: int) -> tuple[socket.socket, bytes]:
    """A sign-in whose head and half its body are sent: a request in hand."""
    body = json.dumps({"login": "1234567890", "password": "not the password at all"}).encode()
    head = (
        f"POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head + body[:10])
    return sock, body[10:]


def _answer(sock: socket.socket) -> bytes:
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


def test_sigterm_lets_requests_in_hand_finish_within_the_bound_then_exits_0(
    cli_env: dict[str, str],
) -> None:
    """One request in hand finishes after SIGTERM; one whose client never finishes it is
    cut at --shutdown-seconds; no new connection is taken meanwhile; exit 0."""
    with serving(env_for(cli_env), "--shutdown-seconds", "3") as (port, process):
        sock, rest = _half_a_sign_in(port)
        stuck, _ = _half_a_sign_in(port)  # the rest never comes
        time.sleep(0.5)  # both reached the app, which waits for the rest of their bodies
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        with pytest.raises(OSError):  # the port is closed to new connections at once
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        sock.sendall(rest)
        answer = _answer(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
        stderr = _exits_0(process, within=15)
        stuck.close()
    assert time.monotonic() - started >= 3, "did not wait for the request in hand"
    assert b"timeout graceful shutdown exceeded" in stderr  # uvicorn says it cut one short


def _exits_0(process: subprocess.Popen[bytes], within: float) -> bytes:
    """``process``, signalled already, exits 0 within ``within`` seconds; its stderr."""
    started = time.monotonic()
    _, stderr = process.communicate(timeout=within + 5)
    assert process.returncode == 0, (process.returncode, stderr.decode()[-2000:])
    assert time.monotonic() - started < within, "SIGTERM honoured too late"
    return stderr

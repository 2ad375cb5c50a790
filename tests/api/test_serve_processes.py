"""Several `casetrack serve` processes on one database, as a deployment runs them: two
servers on two ports of one range (a load balancer in front sends any request to
either), and one server with ``--workers 2`` on one port. Whatever process answers,
a session, a sign-out, a rate limit, a sign-in backoff, a file's validators and
page, and the auditors' log are the same; SIGTERM lets requests in hand finish."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

import httpx
import pytest

from adapters.http.settings import Limits
from tests import cli_process
from tests.api.conftest import (
    METRICS_TOKEN,
    PASSWORD,
    Files,
    Mailbox,
    add_event,
    applicant_registration,
    bearer,
    free_port,
)


def _env(cli_env: dict[str, str], mailbox: Mailbox | None = None) -> dict[str, str]:
    env = {**cli_env, "CASETRACK_METRICS_TOKEN": METRICS_TOKEN}
    if mailbox is not None:
        env |= {
            "CASETRACK_SMTP_HOST": "127.0.0.1",
            "CASETRACK_SMTP_PORT": str(mailbox.port),
            "CASETRACK_SMTP_TLS": "none",
        }
    return env


def _wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
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
def _server(env: dict[str, str], *more: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`casetrack serve` on a free port, in a process group of its own: whatever is still
    running when the block ends (the server, its workers) is killed."""
    port = free_port()
    process = subprocess.Popen(
        [*cli_process.CASETRACK, "serve", "--port", str(port), *more],
        env=env, cwd=cli_process.ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_until_up(port, process)
        yield port, process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def _register(url: str, registration: dict[str, Any]) -> int:
    return httpx.post(f"{url}/v1/accounts/register", json=registration, timeout=30).status_code


def test_two_servers_share_sessions_limits_backoff_caches_and_the_audit_log(
    cli_env: dict[str, str], mailbox: Mailbox, files: Files, store: Any
) -> None:
    env = _env(cli_env, mailbox)
    auditor_key = cli_process.run(["auditors", "add", "inspector"], env).stdout.strip()
    with ExitStack() as stack:
        port_a, _ = stack.enter_context(_server(env))
        port_b, _ = stack.enter_context(_server(env))
        a = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port_a}", timeout=30))
        b = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port_b}", timeout=30))

        # An account made across both: registered on A (A mails the code), verified on B.
        number, payload = files.pick(representative=False, applicant_email=True, decided=False)
        login = payload["principal_applicant"]["uci"]
        assert a.post("/v1/accounts/register", json=applicant_registration(
            number, payload, "principal_applicant")).status_code == 202  # fmt: skip
        mailbox.wait(1)
        verify = {"login": login, "code": mailbox.code(), "password": PASSWORD}
        assert b.post("/v1/accounts/verify", json=verify).status_code == 201

        # The web form served by A is accepted by B (the CSRF token is the shared secret's),
        # and signing out on the page at A ends that session on B.
        web_session = _web_sign_in(port_a, port_b, login)
        assert b.get("/en/applications", cookies=web_session).status_code == 200
        _web_sign_out(port_a, web_session)
        assert b.get("/en/applications", cookies=web_session).status_code == 303

        # Signed in on A, the session works on B.
        token = a.post("/v1/sessions", json={"login": login, "password": PASSWORD}).json()["token"]
        path = f"/v1/applications/{number}"
        on_b = b.get(path, headers=bearer(token))
        assert on_b.status_code == 200
        tag = on_b.headers["etag"]

        # One file, one validator: B's ETag is A's, so A answers B's poller "not modified".
        assert a.get(path, headers=bearer(token)).headers["etag"] == tag
        assert a.get(path, headers={**bearer(token), "If-None-Match": tag}).status_code == 304
        page = f"/en/applications/{number}"
        cookie = {"ct_session": token}
        for server in (a, b):  # each renders the page and keeps it (adapters.http.web.render)
            assert "We sent you a message" not in server.get(page, cookies=cookie).text

        # A change made visible is seen by both, the ETag, the body and the kept page.
        add_event(store, number, "correspondence.sent", {"subject": "A letter about your file"})
        changed = [s.get(path, headers={**bearer(token), "If-None-Match": tag}) for s in (a, b)]
        assert [c.status_code for c in changed] == [200, 200]
        assert changed[0].headers["etag"] == changed[1].headers["etag"] != tag
        assert changed[0].json() == changed[1].json()
        assert changed[0].json()["history"][-1]["title"] == "We sent you a message"
        for server in (a, b):
            assert "We sent you a message" in server.get(page, cookies=cookie).text

        # Signed out on B, the token is dead on A (the API and the page).
        assert b.delete("/v1/sessions/current", headers=bearer(token)).status_code == 204
        assert a.get(path, headers=bearer(token)).status_code == 401
        assert a.get(page, cookies=cookie).status_code == 303

        # The address's registration limit counts the calls to both together.
        allowed = Limits().per_address["register"].hits
        registration = applicant_registration(number, payload, "principal_applicant")
        statuses = [
            _register(str((a, b)[n % 2].base_url), {**registration, "uci": f"{20_000_000 + n}"})
            for n in range(allowed + 1)
        ]
        assert statuses == [202] * (allowed - 1) + [429, 429]  # the first registration counted

        # Wrong passwords alternating between the two wait as if sent to one server.
        free = Limits().sign_in.free
        wrong = {"login": login, "password": "not the password at all"}
        answers = [(a, b)[n % 2].post("/v1/sessions", json=wrong).status_code for n in range(8)]
        assert 429 in answers, answers
        assert answers.index(429) in (free, free + 1), answers  # two servers apart: 2 * free

        # Every auditor read is in the log, whichever server answered it.
        auditor = bearer(auditor_key)
        for n in range(6):
            events = (a, b)[n % 2].get(f"/v1/audit/applications/{number}/events", headers=auditor)
            assert events.status_code == 200
        entries = b.get("/v1/audit/log", headers=auditor).json()["entries"]
    reads = [e for e in entries if e["action"] == "events"]
    assert len(reads) == 6 and {e["application_number"] for e in reads} == {number}
    assert len({e["request_id"] for e in reads}) == 6


def _csrf(port: int) -> dict[str, str]:
    """A sign-in page's CSRF cookie and the token its form carries."""
    page = httpx.get(f"http://127.0.0.1:{port}/en/sign-in", timeout=30)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "no CSRF token in the form"
    return {"ct_csrf": page.cookies["ct_csrf"], "csrf_token": match.group(1)}


def _web_sign_in(form_port: int, post_port: int, login: str) -> dict[str, str]:
    """Sign in with the form ``form_port`` served, posted to ``post_port``; the cookies."""
    csrf = _csrf(form_port)
    answer = httpx.post(
        f"http://127.0.0.1:{post_port}/en/sign-in",
        data={"csrf_token": csrf["csrf_token"], "login": login, "password": PASSWORD},
        cookies={"ct_csrf": csrf["ct_csrf"]},
        timeout=30,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/en/applications"
    return {"ct_csrf": csrf["ct_csrf"], "ct_session": answer.cookies["ct_session"]}


def _web_sign_out(port: int, cookies: dict[str, str]) -> None:
    token = _csrf_token_for(port, cookies)
    answer = httpx.post(
        f"http://127.0.0.1:{port}/en/sign-out",
        data={"csrf_token": token},
        cookies=cookies,
        timeout=30,
    )
    assert answer.status_code == 303, answer.text[:300]


def _csrf_token_for(port: int, cookies: dict[str, str]) -> str:
    page = httpx.get(f"http://127.0.0.1:{port}/en/applications", cookies=cookies, timeout=30)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "no sign-out form"
    return match.group(1)


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
    env = _env(cli_env)
    with _server(env, "--workers", "2") as (port, process):
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
    with _server(_env(cli_env), "--shutdown-seconds", "3") as (port, process):
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

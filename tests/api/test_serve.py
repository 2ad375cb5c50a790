"""`casetrack serve` in a subprocess, end to end over real HTTP and SMTP, and what it logs:
structured access lines, and no personal data, codes, tokens or passwords anywhere."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from adapters.http.settings import Limits
from tests import cli_process
from tests.api.conftest import (
    METRICS_TOKEN,
    PASSWORD,
    Files,
    Mailbox,
    applicant_registration,
    free_port,
)


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not come up")


def test_serve_end_to_end_logs_no_personal_data(
    cli_env: dict[str, str], mailbox: Mailbox, files: Files, tmp_path: Path
) -> None:
    env = {
        **cli_env,
        "CASETRACK_LOG_LEVEL": "info",
        "CASETRACK_SMTP_HOST": "127.0.0.1",
        "CASETRACK_SMTP_PORT": str(mailbox.port),
        "CASETRACK_SMTP_TLS": "none",
        "CASETRACK_METRICS_TOKEN": METRICS_TOKEN,
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file, _serving(env, log_file) as port:
        secrets_seen = _flow(f"http://127.0.0.1:{port}", mailbox, files)
    logged = log_path.read_text()
    print(logged)
    access = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    routes = {entry.get("route") for entry in access if entry.get("event") == "request"}
    assert "/v1/applications/{application_number}" in routes and "/v1/sessions" in routes
    assert all(
        {"request_id", "method", "status", "duration_ms"} <= set(entry)
        for entry in access
        if entry.get("event") == "request"
    )
    for value in secrets_seen:
        pattern = r"(?<![\w@.-])" + re.escape(value) + r"(?![\w@-])"
        assert not re.search(pattern, logged, flags=re.IGNORECASE), "personal data in logs"
    assert "Traceback" not in logged


def _flow(url: str, mailbox: Mailbox, files: Files) -> set[str]:
    number, payload = files.pick(representative=False, applicant_email=True, acknowledged=True)
    person = payload["principal_applicant"]
    with httpx.Client(base_url=url, timeout=30.0) as http:
        registration = applicant_registration(number, payload, "principal_applicant")
        assert http.post("/v1/accounts/register", json=registration).status_code == 202
        bad = {**registration, "family_name": "Nobody-" + person["family_name"]}
        assert http.post("/v1/accounts/register", json=bad).status_code == 202
        mailbox.wait(1)
        code = mailbox.code()
        verified = http.post(
            "/v1/accounts/verify",
            json={"login": person["uci"], "code": code, "password": PASSWORD},
        )
        assert verified.status_code == 201, verified.text
        wrong = http.post("/v1/sessions", json={"login": person["uci"], "password": "x" * 12})
        assert wrong.status_code == 401
        token = http.post(
            "/v1/sessions", json={"login": person["uci"], "password": PASSWORD}
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        view: dict[str, Any] = http.get(f"/v1/applications/{number}", headers=headers).json()
        assert view["application_number"] == number
        tag = http.get(f"/v1/applications/{number}", headers=headers).headers["etag"]
        again = http.get(f"/v1/applications/{number}", headers={**headers, "If-None-Match": tag})
        assert again.status_code == 304
        assert http.get("/v1/applications/Z000000000", headers=headers).status_code == 404
        assert http.delete("/v1/sessions/current", headers=headers).status_code == 204
        assert http.get("/metrics").status_code == 401
        metrics = http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        assert "casetrack_http_request_duration_seconds_bucket" in metrics
    return {
        person["uci"],
        person["family_name"],
        person["given_name"],
        person["email"],
        person["date_of_birth"],
        code,
        token,
        PASSWORD,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CASETRACK_SMTP_TLS", "sometimes"),
        ("CASETRACK_TRUSTED_PROXIES", "127.0.0.1, *"),
        ("CASETRACK_METRICS_TOKEN", "short"),
    ],
)
def test_serve_refuses_bad_settings(cli_env: dict[str, str], name: str, value: str) -> None:
    done = cli_process.run(["serve", "--port", str(free_port())], {**cli_env, name: value})
    assert done.returncode == 2 and name in done.stderr
    assert "Traceback" not in done.stderr


@contextmanager
def _serving(env: dict[str, str], log: IO[bytes] | None = None) -> Iterator[int]:
    """`casetrack serve` on a free port until the block ends (then SIGINT); yields the port.
    What it writes (both streams) goes to ``log``, or nowhere."""
    port = free_port()
    output = subprocess.DEVNULL if log is None else log
    serve = ["serve", "--port", str(port)]
    with cli_process.running(serve, env, stdout=output, stderr=subprocess.STDOUT) as process:
        try:
            _wait_until_up(f"http://127.0.0.1:{port}", process)
            yield port
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)


def _register_on_a_new_connection(port: int, n: int, forwarded_for: str | None) -> tuple[int, int]:
    """One registration (a distinct UCI, so only the address limit can bite) on a fresh
    TCP connection; returns the status and the connection's source port."""
    body = {
        "application_number": "F000000001",
        "role": "principal_applicant",
        "family_name": "Tremblay",
        "uci": f"{10_000_000 + n}",
        "date_of_birth": "1990-01-01",
    }
    headers = {"Content-Type": "application/json", "Connection": "close"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/v1/accounts/register", json.dumps(body), headers)
        source_port = connection.sock.getsockname()[1]
        return connection.getresponse().status, source_port
    finally:
        connection.close()


def _spoofed(n: int) -> str:
    return f"203.0.113.{n % 250 + 1}"


@pytest.mark.parametrize("trusted", ["", "10.9.8.7"], ids=["no-proxy", "another-proxy"])
def test_address_limit_holds_across_connections_and_spoofed_forwarded_for(
    cli_env: dict[str, str], trusted: str
) -> None:
    """From 127.0.0.1, whatever X-Forwarded-For says, every connection counts against one
    address unless 127.0.0.1 is a configured trusted proxy."""
    allowed = Limits().per_address["register"].hits
    with _serving({**cli_env, "CASETRACK_TRUSTED_PROXIES": trusted}) as port:
        answers = [
            _register_on_a_new_connection(port, n, _spoofed(n) if n % 2 else None)
            for n in range(allowed + 2)
        ]
    assert len({source for _, source in answers}) == len(answers), "one connection each"
    assert [status for status, _ in answers] == [202] * allowed + [429, 429]


def test_a_trusted_proxy_forwards_each_clients_address(cli_env: dict[str, str]) -> None:
    allowed = Limits().per_address["register"].hits
    with _serving({**cli_env, "CASETRACK_TRUSTED_PROXIES": "127.0.0.1"}) as port:
        others = [_register_on_a_new_connection(port, n, _spoofed(n)) for n in range(allowed + 2)]
        one = [
            _register_on_a_new_connection(port, 1000 + n, "198.51.100.7, 127.0.0.1")
            for n in range(allowed + 1)
        ]
    assert [status for status, _ in others] == [202] * (allowed + 2), "one client each"
    assert [status for status, _ in one] == [202] * allowed + [429]


def _exchange(port: int, head: bytes, chunks: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    """Send raw bytes on one connection and read the answer until the server closes it
    (or 10 s pass: a server still waiting for the body answers nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server may refuse before the body is all sent
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


def _post_head(port: int, *lines: str) -> bytes:
    return (
        "POST /v1/sessions HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        + "".join(line + "\r\n" for line in lines)
        + "\r\n"
    ).encode()


def test_oversized_requests_are_refused_before_they_are_read(cli_env: dict[str, str]) -> None:
    with _serving(cli_env) as port:
        declared = _exchange(port, _post_head(port, f"Content-Length: {100 * 2**20}"))
        absurd = _exchange(port, _post_head(port, "Content-Length: " + "9" * 30))
        piece = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
        chunked = _exchange(port, _post_head(port, "Transfer-Encoding: chunked"), [piece] * 8)
        long_header = _exchange(port, _post_head(port, "X-Long: " + "a" * 40_000))
        many_headers = _exchange(
            port, _post_head(port, *(f"X-H{n}: 1" for n in range(200)), "Content-Length: 0")
        )
        endless_head = _exchange(
            port, _post_head(port)[:-2], [b"X-More: " + b"a" * 200 + b"\r\n"] * 100
        )
    assert absurd.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 413 ")), absurd[:80]  # h11 or us
    for answer in (declared, chunked):
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]
        assert b"application/problem+json" in answer and b"/problems/too-large" in answer
    for answer in (long_header, many_headers):
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert endless_head.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), "headers never ending"

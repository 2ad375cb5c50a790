"""`casetrack serve` in a subprocess, end to end over real HTTP and SMTP, and what it logs:
structured access lines, and no personal data, codes, tokens or passwords anywhere."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import PASSWORD, Files, Mailbox, applicant_registration, free_port

ROOT = Path(__file__).resolve().parents[2]


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
    port = free_port()
    env = {
        **cli_env,
        "CASETRACK_LOG_LEVEL": "info",
        "CASETRACK_SMTP_HOST": "127.0.0.1",
        "CASETRACK_SMTP_PORT": str(mailbox.port),
        "CASETRACK_SMTP_TLS": "none",
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli.main", "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, process)
            secrets_seen = _flow(url, mailbox, files)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
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
        metrics = http.get("/metrics").text
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


def test_serve_refuses_bad_settings(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "CASETRACK_SMTP_TLS": "sometimes"}
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "serve", "--port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "CASETRACK_SMTP_TLS" in done.stderr
    assert "Traceback" not in done.stderr

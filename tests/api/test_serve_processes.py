"""Two `casetrack serve` processes on one database, as a deployment runs them: on two
ports of one range (a load balancer in front sends any request to either). Whatever
process answers, a session, a sign-out, a rate limit, a sign-in backoff, a file's
validators and page, a form's CSRF token and the auditors' log are the same
(tests/api/test_serve_workers.py: one port, several workers, and SIGTERM)."""

from __future__ import annotations

import re
from contextlib import ExitStack
from typing import Any

import httpx

from adapters.http.settings import Limits
from tests import cli_process
from tests.api.conftest import (
    PASSWORD,
    Files,
    Mailbox,
    add_event,
    applicant_registration,
    bearer,
)
from tests.api.serve_process import env_for, serving


def _register(url: str, registration: dict[str, Any]) -> int:
    return httpx.post(f"{url}/v1/accounts/register", json=registration, timeout=30).status_code


def test_two_servers_share_sessions_limits_backoff_caches_and_the_audit_log(
    cli_env: dict[str, str], mailbox: Mailbox, files: Files, store: Any
) -> None:
    env = env_for(cli_env, mailbox)
    auditor_key = cli_process.run(["auditors", "add", "inspector"], env).stdout.strip()
    with ExitStack() as stack:
        port_a, _ = stack.enter_context(serving(env))
        port_b, _ = stack.enter_context(serving(env))
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

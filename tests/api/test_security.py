"""Security properties of the API: isolation between callers, role filtering, codes,
sessions, lockout, rate limits, enumeration and hostile identifiers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from adapters.http.passwords import Passwords
from adapters.http.settings import Limit, Limits
from domain.accounts import CODE_MAX_ATTEMPTS
from domain.backoff import Backoff
from projections.case_status import SPONSOR_FIELDS
from tests.api.conftest import (
    FAST_HASHER,
    METRICS_TOKEN,
    PASSWORD,
    Clock,
    Files,
    Mailbox,
    applicant_registration,
    bearer,
    registered,
    sign_up,
)


def _applicant(
    client: TestClient, mailbox: Mailbox, files: Files, **pick: object
) -> tuple[str, str]:
    number, payload = files.pick(representative=False, applicant_email=True, **pick)  # type: ignore[arg-type]
    uci = payload["principal_applicant"]["uci"]
    registration = applicant_registration(number, payload, "principal_applicant")
    return number, sign_up(client, mailbox, registration, uci)


def _comparable(answer: object) -> tuple[int, dict[str, object], str]:
    body = dict(answer.json())  # type: ignore[attr-defined]
    body.pop("instance", None)  # the request id differs, nothing else may
    return answer.status_code, body, answer.headers["content-type"]  # type: ignore[attr-defined]


def test_another_callers_file_answers_exactly_like_a_missing_one(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    mine, token = _applicant(client, mailbox, files)
    theirs, _ = files.pick(exclude=(mine,))
    missing = "Z999999999"
    for suffix in ("", "/history"):
        a = client.get(f"/v1/applications/{theirs}{suffix}", headers=bearer(token))
        b = client.get(f"/v1/applications/{missing}{suffix}", headers=bearer(token))
        assert a.status_code == 404
        assert _comparable(a) == _comparable(b)
        assert theirs not in a.text
    assert client.get(f"/v1/applications/{mine}", headers=bearer(token)).status_code == 200


def test_a_sponsor_never_sees_applicant_only_fields(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(sponsor_email=True, acknowledged=True, decided=False)
    uci = payload["sponsor"]["uci"]
    token = sign_up(client, mailbox, applicant_registration(number, payload, "sponsor"), uci)
    view = client.get(f"/v1/applications/{number}", headers=bearer(token)).json()
    served_beside = {"days_elapsed", "service_standard_days", "role", "lang", "history", "contact"}
    assert set(view) <= set(SPONSOR_FIELDS) | served_beside
    for hidden in ("activities", "next_steps", "documents", "estimate", "acknowledged_on"):
        assert hidden not in view
    assert view["history"], "the sponsor sees the history"


def test_brute_forcing_a_code_kills_it(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> None:
    """A code's total of guesses, from everywhere (here without the per-address waits)."""
    client = make_client(limits=_ROOMY)
    registration, code = registered(client, mailbox, files)
    uci = registration["uci"]
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for _ in range(CODE_MAX_ATTEMPTS):
        answer = client.post(
            "/v1/accounts/verify", json={"login": uci, "code": wrong, "password": PASSWORD}
        )
        assert answer.status_code == 400 and answer.json()["type"] == "/problems/invalid-code"
    dead = client.post(
        "/v1/accounts/verify", json={"login": uci, "code": code, "password": PASSWORD}
    )
    assert dead.status_code == 400, "the right code no longer works after all its attempts"
    # A new code replaces the spent one.
    client.post("/v1/accounts/register", json=registration)
    mailbox.wait(2)
    fresh = mailbox.code()
    ok = client.post(
        "/v1/accounts/verify", json={"login": uci, "code": fresh, "password": PASSWORD}
    )
    assert ok.status_code == 201


def test_a_new_code_replaces_the_old_one(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    registration, first = registered(client, mailbox, files)
    uci = registration["uci"]
    client.post("/v1/accounts/register", json=registration)
    mailbox.wait(2)
    second = mailbox.code()
    if first != second:
        old = client.post(
            "/v1/accounts/verify", json={"login": uci, "code": first, "password": PASSWORD}
        )
        assert old.status_code == 400
    new = client.post(
        "/v1/accounts/verify", json={"login": uci, "code": second, "password": PASSWORD}
    )
    assert new.status_code == 201


@pytest.mark.parametrize(
    ("elapsed", "status"),
    [({"hours": 12, "seconds": 1}, 400), ({"hours": 11, "minutes": 59}, 201)],
    ids=["expired", "just-inside-12-hours"],
)
def test_a_code_is_valid_12_hours(
    client: TestClient,
    mailbox: Mailbox,
    files: Files,
    clock: Clock,
    elapsed: dict[str, float],
    status: int,
) -> None:
    registration, code = registered(client, mailbox, files)
    uci = registration["uci"]
    clock.advance(**elapsed)
    answer = client.post(
        "/v1/accounts/verify", json={"login": uci, "code": code, "password": PASSWORD}
    )
    assert answer.status_code == status


def test_an_expired_session_is_refused(
    client: TestClient, mailbox: Mailbox, files: Files, clock: Clock
) -> None:
    number, token = _applicant(client, mailbox, files)
    assert client.get(f"/v1/applications/{number}", headers=bearer(token)).status_code == 200
    clock.advance(hours=8, seconds=1)
    for path in ("/v1/applications", f"/v1/applications/{number}"):
        assert client.get(path, headers=bearer(token)).status_code == 401


def test_registration_answers_are_identical_whatever_the_match(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(representative=False, applicant_email=True)
    good = applicant_registration(number, payload, "principal_applicant")
    no_email_number, no_email = files.pick(representative=False, applicant_email=False)
    attempts = [
        good,
        {**good, "date_of_birth": "1901-01-01"},
        {**good, "family_name": good["family_name"] + "x"},
        {**good, "application_number": "Z999999999"},
        {**good, "role": "sponsor"},
        applicant_registration(no_email_number, no_email, "principal_applicant"),
    ]
    answers = [client.post("/v1/accounts/register", json=body) for body in attempts]
    assert len({(a.status_code, a.text, a.headers["content-type"]) for a in answers}) == 1
    assert answers[0].status_code == 202
    assert len(mailbox.wait(1, timeout=1.0)) == 1, "only the exact match gets a code"


def test_reset_and_sign_in_answers_do_not_tell_which_logins_exist(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    sign_up(client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci)
    unknown = "1234567890" if uci != "1234567890" else "1234567891"
    resets = [client.post("/v1/accounts/password-reset", json={"login": x}) for x in (uci, unknown)]
    assert resets[0].status_code == 202 and resets[0].text == resets[1].text
    wrong = [
        client.post("/v1/sessions", json={"login": x, "password": "not the password!"})
        for x in (uci, unknown)
    ]
    assert _comparable(wrong[0]) == _comparable(wrong[1])
    assert wrong[0].status_code == 401


def test_rate_limits_per_login_and_address_and_per_address(
    make_client: Callable[..., TestClient], files: Files
) -> None:
    tight = replace(
        Limits(),
        per_login_address={**Limits().per_login_address, "register": Limit(2, 3600)},
        per_address={**Limits().per_address, "login": Limit(3, 60)},
    )
    client = make_client(limits=tight)
    number, payload = files.pick()
    body = applicant_registration(number, payload, "principal_applicant")
    codes = [client.post("/v1/accounts/register", json=body).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    limited = client.post("/v1/accounts/register", json=body)
    assert limited.json()["type"] == "/problems/rate-limited"
    assert 0 < int(limited.headers["retry-after"]) <= 3600
    logins = [
        client.post("/v1/sessions", json={"login": f"1000000{n:03d}", "password": "x" * 12})
        for n in range(4)
    ]
    assert [a.status_code for a in logins] == [401, 401, 401, 429]
    metrics = client.get("/metrics", headers=bearer(METRICS_TOKEN)).text
    assert 'casetrack_rate_limited_total{action="register"}' in metrics


def test_hostile_identifiers_are_rejected_before_any_query(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    _, token = _applicant(client, mailbox, files)
    hostile_paths = [
        "/v1/applications/F000000001'%20OR%20'1'='1",
        "/v1/applications/f000000001",
        "/v1/applications/F0000000011",
        "/v1/applications/..%2F..%2Fetc%2Fpasswd",
        "/v1/applications/../../etc/passwd",
        "/v1/applications/F000000001;DROP%20TABLE%20accounts",
        "/v1/applications/F000000001?lang=de",
    ]
    for path in hostile_paths:
        answer = client.get(path, headers=bearer(token))
        assert answer.status_code in (404, 422), path
        assert answer.headers["content-type"] == "application/problem+json"
        assert "DROP" not in answer.text and "passwd" not in answer.text
    bodies = [
        {"login": "' OR 1=1 --", "password": "x" * 12},
        {"login": "12345678; DROP TABLE accounts", "password": "x" * 12},
        {"login": "12345678", "password": "x" * 12, "extra": 1},
    ]
    for body in bodies:
        answer = client.post("/v1/sessions", json=body)
        assert answer.status_code == 422
        assert "DROP" not in answer.text and "OR 1=1" not in answer.text
    register = client.post(
        "/v1/accounts/register",
        json={
            "application_number": "F1'--",
            "role": "principal_applicant",
            "family_name": "x",
            "uci": "12345678",
            "date_of_birth": "1990-01-01",
        },
    )
    assert register.status_code == 422
    assert register.json()["errors"][0]["location"] == [
        "body",
        "principal_applicant",
        "application_number",
    ]
    garbage = client.get("/v1/applications", headers={"Authorization": "Bearer ' OR 1=1"})
    assert garbage.status_code == 401


def test_problem_details_for_unknown_routes_and_methods(client: TestClient) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == "/problems/not-found"
    wrong_method = client.put("/v1/sessions")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405
    not_json = client.post(
        "/v1/sessions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and "Traceback" not in not_json.text


_EVERY_ANSWER = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def test_every_answer_has_security_headers_and_only_file_reads_may_be_cached(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, token = _applicant(client, mailbox, files)
    uncacheable = [
        client.post("/v1/sessions", json={"login": "12345678", "password": "x" * 12}),
        client.post("/v1/accounts/password-reset", json={"login": "12345678"}),
        client.get("/v1/applications", headers=bearer(token)),
        client.get("/healthz"),
        client.get("/v1/nothing-here"),
        client.post("/v1/sessions", json=[]),
    ]
    read = client.get(f"/v1/applications/{number}", headers=bearer(token))
    history = client.get(f"/v1/applications/{number}/history?lang=en", headers=bearer(token))
    for answer in [*uncacheable, read, history]:
        for name, value in _EVERY_ANSWER.items():
            assert answer.headers.get(name) == value, (answer.url, name)
        assert "strict-transport-security" not in answer.headers, "plain HTTP: no HSTS"
    for answer in uncacheable:
        assert answer.headers["cache-control"] == "no-store", answer.url
    for answer in (read, history):
        assert answer.headers["cache-control"].startswith("private"), "revalidated views"
    signed_in = client.post(
        "/v1/sessions",
        json={"login": files.received[number]["principal_applicant"]["uci"], "password": PASSWORD},
    )
    assert signed_in.status_code == 201 and signed_in.headers["cache-control"] == "no-store"


def test_hsts_over_tls_or_from_a_trusted_tls_proxy_only(
    make_client: Callable[..., TestClient],
) -> None:
    hsts = "max-age=31536000; includeSubDomains"
    direct = make_client()
    assert "strict-transport-security" not in direct.get("/healthz").headers
    forwarded = {"X-Forwarded-Proto": "https"}
    assert "strict-transport-security" not in direct.get("/healthz", headers=forwarded).headers
    over_tls = make_client()
    over_tls.base_url = over_tls.base_url.copy_with(scheme="https")
    assert over_tls.get("/healthz").headers["strict-transport-security"] == hsts
    proxied = make_client(trusted_proxies=("testclient",))  # the test client's peer name
    assert proxied.get("/healthz", headers=forwarded).headers["strict-transport-security"] == hsts


def test_no_redirect_is_built_from_the_host_header(client: TestClient) -> None:
    for path in ("/v1/sessions/", "/healthz/", "/v1/applications/"):
        answer = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert answer.status_code == 404, path
        assert "location" not in answer.headers and "evil.example" not in answer.text


def test_validation_problems_name_the_field_and_never_echo_the_input(client: TestClient) -> None:
    marker = "zorglub"
    valid = {
        "application_number": "F123456789",
        "role": "representative",
        "family_name": "Tremblay",
        "email": "rep@example.com",
    }
    bodies = [
        ("/v1/accounts/register", {**valid, "role": marker}),
        ("/v1/accounts/register", {**valid, "role": [marker]}),
        ("/v1/accounts/register", {**valid, "email": f"rep@{marker}\N{PILE OF POO}.example"}),
        ("/v1/accounts/register", {**valid, "email": f"rep@{marker}_x.example"}),
        ("/v1/accounts/register", {**valid, marker: "x"}),
        ("/v1/sessions", {"login": "12345678", "password": "x" * 12, marker: 1}),
        ("/v1/sessions", {"login": marker, "password": marker * 20}),
    ]
    for path, body in bodies:
        answer = client.post(path, json=body)
        assert answer.status_code == 422, body
        assert marker not in answer.text.lower(), answer.text
        errors = answer.json()["errors"]
        assert errors and all(e["location"][0] == "body" and e["message"] for e in errors)
    tag = client.post("/v1/accounts/register", json={**valid, "role": marker}).json()
    assert tag["errors"][0]["location"] == ["body", "role"]
    assert "principal_applicant" in tag["errors"][0]["message"], "names what is expected"
    email = client.post("/v1/accounts/register", json={**valid, "email": "rep@x_y.example"})
    assert email.json()["errors"][0]["location"] == ["body", "representative", "email"]


def test_control_characters_in_an_email_login_are_a_clear_422(client: TestClient) -> None:
    for login in ("a\x00b@example.com", "rep@exa\x00mple.com", "a\x1fb@example.com"):
        for path, body in (
            ("/v1/sessions", {"login": login, "password": "x" * 12}),
            ("/v1/accounts/password-reset", {"login": login}),
            ("/v1/accounts/verify", {"login": login, "code": "12345678", "password": PASSWORD}),
        ):
            answer = client.post(path, json=body)
            assert answer.status_code == 422, (path, answer.status_code)
            assert answer.json()["errors"][0]["location"][-1] == "login"
            assert "\x00" not in answer.text and "example.com" not in answer.text


def test_rate_limit_buckets_are_keyed_with_the_server_secret(
    make_client: Callable[..., TestClient], database_url: str, schema: str
) -> None:
    """Two servers with different secrets count the same login in different buckets: a
    stolen rate_limits table cannot be matched against guessed logins without the secret."""
    body = {"login": "12345678", "password": "x" * 12}
    for key in (b"1" * 32, b"2" * 32):
        assert make_client(secret_key=key).post("/v1/sessions", json=body).status_code == 401
    with psycopg.connect(database_url) as conn:
        hits = conn.execute(
            sql.SQL("SELECT hits FROM {}.rate_limits").format(sql.Identifier(schema))
        ).fetchall()
    assert hits and all(h == (1,) for h in hits)


_ROOMY = replace(
    Limits(),
    per_address={**Limits().per_address, "verify": Limit(100, 900)},
    per_login_address={**Limits().per_login_address, "verify": Limit(100, 900)},
    code_guesses=Backoff(free=100),
)


class _CountingPasswords(Passwords):
    """The real hasher, counting the codes actually checked (and slowed a little, so
    parallel requests overlap as they would under load)."""

    def __init__(self) -> None:
        super().__init__(FAST_HASHER)
        self.checked = 0

    async def verify(self, hashed: str | None, secret: str) -> bool:
        if hashed is not None:
            self.checked += 1
        await asyncio.sleep(0.05)
        return await super().verify(hashed, secret)


@pytest.mark.parametrize(
    ("limits", "guesses", "allowed"),
    [
        (_ROOMY, CODE_MAX_ATTEMPTS + 5, CODE_MAX_ATTEMPTS),  # the code's total
        (Limits(), 12, Limits().code_guesses.free),  # one address's free guesses
    ],
    ids=["code-total", "per-address"],
)
def test_parallel_code_guesses_are_counted_before_the_check(
    make_client: Callable[..., TestClient],
    mailbox: Mailbox,
    files: Files,
    limits: Limits,
    guesses: int,
    allowed: int,
) -> None:
    client = make_client(limits=limits)
    registration, code = registered(client, mailbox, files)
    uci = registration["uci"]
    counting = _CountingPasswords()
    client.app.state.services.passwords = counting  # type: ignore[attr-defined]
    wrong = [f"{(int(code) + n) % 10**8:08d}" for n in range(1, guesses + 1)]

    def guess(value: str) -> int:
        body = {"login": uci, "code": value, "password": PASSWORD}
        return client.post("/v1/accounts/verify", json=body).status_code

    with ThreadPoolExecutor(max_workers=len(wrong)) as pool:
        statuses = list(pool.map(guess, wrong))
    assert set(statuses) <= {400, 429}
    assert counting.checked <= allowed, f"{counting.checked} guesses were checked"

"""Slowing password and code guessing down without handing anyone a lockout of the owner:
per login and address, growing delays that decay, separate buckets per action."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.api.conftest import (
    Clock,
    Files,
    Mailbox,
    applicant_registration,
    sign_in,
    sign_up,
)

KEY = b"k" * 32
WRONG = "wrong password!!"


def _owner(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> tuple[str, TestClient]:
    number, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    home = make_client(address="198.51.100.7", secret_key=KEY)
    sign_up(home, mailbox, applicant_registration(number, payload, "principal_applicant"), uci)
    return uci, home


def test_wrong_passwords_from_elsewhere_never_lock_the_owner_out(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> None:
    uci, home = _owner(make_client, mailbox, files)
    attacker = make_client(address="203.0.113.9", secret_key=KEY)
    statuses = [
        attacker.post("/v1/sessions", json={"login": uci, "password": WRONG}).status_code
        for _ in range(8)
    ]
    assert 401 in statuses and 423 not in statuses
    assert statuses[-1] == 429, "the guessing address is slowed down"
    sign_in(home, uci)


def test_guessing_from_one_address_waits_longer_and_longer_then_decays(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files, clock: Clock
) -> None:
    uci, _ = _owner(make_client, mailbox, files)
    guesser = make_client(address="203.0.113.9", secret_key=KEY)
    waits = []
    for _ in range(9):
        answer = guesser.post("/v1/sessions", json={"login": uci, "password": WRONG})
        if answer.status_code == 429:
            assert answer.json()["type"] == "/problems/rate-limited"
            waits.append(int(answer.headers["retry-after"]))
            clock.advance(seconds=waits[-1])
            answer = guesser.post("/v1/sessions", json={"login": uci, "password": WRONG})
        assert answer.status_code == 401, "after the wait, a guess is checked again"
    assert len(waits) >= 3 and waits == sorted(waits) and waits[-1] > waits[0]
    clock.advance(days=1)
    for _ in range(4):  # the old failures have decayed: no waiting
        answer = guesser.post("/v1/sessions", json={"login": uci, "password": WRONG})
        assert answer.status_code == 401
    sign_in(guesser, uci)


def test_failures_decay_instead_of_adding_up_forever(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files, clock: Clock
) -> None:
    uci, home = _owner(make_client, mailbox, files)
    for _ in range(4):
        for _ in range(4):
            answer = home.post("/v1/sessions", json={"login": uci, "password": WRONG})
            assert answer.status_code == 401
        clock.advance(days=1)
    sign_in(home, uci)


def test_reset_requests_do_not_use_up_the_confirmations(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> None:
    uci, home = _owner(make_client, mailbox, files)
    asked = [
        home.post("/v1/accounts/password-reset", json={"login": uci}).status_code for _ in range(6)
    ]
    assert asked[-1] == 429
    mailbox.wait(1 + asked.count(202))
    done = home.post(
        "/v1/accounts/password-reset/confirm",
        json={"login": uci, "code": mailbox.code(), "password": "an entirely different one"},
    )
    assert done.status_code == 200, done.text


def test_reset_requests_from_elsewhere_do_not_block_the_owners_reset(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> None:
    uci, home = _owner(make_client, mailbox, files)
    attacker = make_client(address="203.0.113.9", secret_key=KEY)
    flooded = [
        attacker.post("/v1/accounts/password-reset", json={"login": uci}).status_code
        for _ in range(8)
    ]
    assert flooded[-1] == 429
    assert home.post("/v1/accounts/password-reset", json={"login": uci}).status_code == 202


def test_requests_from_many_addresses_cannot_flood_a_mailbox(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> None:
    uci, _ = _owner(make_client, mailbox, files)
    number, payload = files.pick(sponsor_email=True)
    sentinel = applicant_registration(number, payload, "sponsor")
    for n in range(3):
        sender = make_client(address=f"203.0.113.{n + 1}", secret_key=KEY)
        for _ in range(3):
            asked = sender.post("/v1/accounts/password-reset", json={"login": uci})
            assert asked.status_code == 202
        # Each app's one outbox worker takes jobs in order: once this code arrives, the
        # sender's resets are done.
        sender.post("/v1/accounts/register", json=sentinel)
    sponsor = payload["sponsor"]["email"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sent = mailbox.folder.messages()
        if sum(m["To"] == sponsor for m in sent) == 3:
            break
        time.sleep(0.02)
    resets = [m for m in sent if m["To"] != sponsor and "reset" in m["Subject"]]
    assert len(resets) == 5, "5 reset codes an hour per login, whoever asks"


def test_wrong_codes_from_elsewhere_do_not_kill_the_owners_code(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> None:
    uci, home = _owner(make_client, mailbox, files)
    assert home.post("/v1/accounts/password-reset", json={"login": uci}).status_code == 202
    mailbox.wait(2)
    code = mailbox.code()
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    attacker = make_client(address="203.0.113.9", secret_key=KEY)
    body = {"login": uci, "code": wrong, "password": "an attacker's passphrase here"}
    statuses = [
        attacker.post("/v1/accounts/password-reset/confirm", json=body).status_code
        for _ in range(8)
    ]
    assert statuses[:5] == [400] * 5 and statuses[-1] == 429
    done = home.post(
        "/v1/accounts/password-reset/confirm",
        json={"login": uci, "code": code, "password": "an entirely different one"},
    )
    assert done.status_code == 200, done.text


def test_guesses_from_one_ipv6_network_share_one_backoff(
    make_client: Callable[..., TestClient], mailbox: Mailbox, files: Files
) -> None:
    """One IPv6 host holds a whole /64: a guesser moving through its addresses is one
    address to the limits, while a neighbouring /64 is not slowed down."""
    uci, _ = _owner(make_client, mailbox, files)
    statuses = []
    for n in range(6):
        guesser = make_client(address=f"2001:db8:1:2::{n + 1:x}", secret_key=KEY)
        answer = guesser.post("/v1/sessions", json={"login": uci, "password": WRONG})
        statuses.append(answer.status_code)
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    neighbour = make_client(address="2001:db8:1:3::1", secret_key=KEY)
    assert neighbour.post("/v1/sessions", json={"login": uci, "password": WRONG}).status_code == 401

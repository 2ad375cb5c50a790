"""The `casetrack` command end to end, in a subprocess, against the test schema."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from adapters.postgres.event_store import CaseStore
from simulation import casegen
from tests.integration.stored_events import store_nul_in_a_text_column

ROOT = Path(__file__).resolve().parents[2]


def casetrack(
    env: dict[str, str], *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", *args],
        env=env,
        cwd=ROOT,
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ingested(cli_env: dict[str, str], cases: int = 30) -> list[dict[str, object]]:
    lines = casegen.generate(cases, seed=4, duplicate_share=0.05, invalid_share=0.03)
    done = casetrack(cli_env, "ingest", "-", "--json", stdin="\n".join(lines).encode())
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert casetrack(cli_env, "project", "--once").returncode == 0
    assert set(summary) == {"accepted", "duplicates", "rejected"}
    assert summary["duplicates"] > 0 and summary["rejected"] > 0
    return [
        json.loads(line)
        for line in lines
        if line.startswith("{") and '"event_id"' in line and _valid_json(line)
    ]


def _valid_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def test_status_in_both_languages_and_json(cli_env: dict[str, str]) -> None:
    events = _ingested(cli_env)
    number = next(e["application_number"] for e in events if e["type"] == "decision.made")
    view = json.loads(casetrack(cli_env, "status", str(number), "--json").stdout)
    assert view["status"] == "closed" and view["outcome"] in ("approved", "refused")
    assert set(view["activities"]) == {
        "eligibility",
        "sponsor_eligibility",
        "medical",
        "biometrics",
        "background_check",
    }
    assert view["service_standard_days"] == 365 and view["days_elapsed"] >= 0
    assert "Application:" in casetrack(cli_env, "status", str(number)).stdout
    assert "Demande:" in casetrack(cli_env, "status", str(number), "--lang", "fr").stdout


def test_status_history_holds_what_the_role_may_see(cli_env: dict[str, str]) -> None:
    """A sponsor's history is the overall milestones; nobody gets internal type names."""
    events = _ingested(cli_env)
    number = next(e["application_number"] for e in events if e["type"] == "decision.made")
    types = {e["type"] for e in events if e["application_number"] == number}
    milestones = types & {"application.received", "application.acknowledged", "decision.made"}
    found = {}
    for role in ("sponsor", "principal_applicant", "representative"):
        done = casetrack(cli_env, "status", str(number), "--json", "--role", role)
        found[role] = json.loads(done.stdout)["history"]
        for line in found[role]:
            assert set(line) == {"title", "text", "occurred_at", "recorded_at"}, role
    assert len(found["sponsor"]) == len(milestones)
    assert len(found["principal_applicant"]) > len(milestones)
    assert found["representative"] == found["principal_applicant"]
    text = casetrack(cli_env, "status", str(number), "--role", "sponsor").stdout
    assert "We received your application" in text and "medical" not in text.lower()


def test_history_and_as_of_version(cli_env: dict[str, str]) -> None:
    events = _ingested(cli_env)
    number = str(events[0]["application_number"])
    history = json.loads(casetrack(cli_env, "history", number, "--json").stdout)
    assert [h["version"] for h in history] == list(range(1, len(history) + 1))
    assert history[0]["type"] == "application.received"
    assert {"event_id", "source", "occurred_at", "recorded_at"} <= set(history[0])
    assert {"path": "status", "before": None, "after": "received"} in history[0]["changes"]
    text = casetrack(cli_env, "history", number).stdout.splitlines()
    assert text[0].split()[:3] == ["1", history[0]["occurred_at"][:19], "application.received"]
    assert '     status: null → "received"' in text[: 1 + len(history[0]["changes"])]
    assert len(text) == len(history) + sum(len(h["changes"]) for h in history)
    first = json.loads(casetrack(cli_env, "history", number, "--as-of-version", "1").stdout)
    assert first["status"]["status"] == "received"
    assert first["status"]["next_steps"] == []
    bad = casetrack(cli_env, "history", number, "--as-of-version", str(len(history) + 1))
    assert bad.returncode == 2 and "between 1 and" in bad.stderr


def test_dead_letters_list_and_show(cli_env: dict[str, str]) -> None:
    _ingested(cli_env)
    listed = casetrack(cli_env, "dead-letters", "list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows and all(r["reason"] and r["error_kind"] for r in rows)
    shown = json.loads(casetrack(cli_env, "dead-letters", "show", str(rows[0]["id"])).stdout)
    assert shown["raw"] and shown["position"] == rows[0]["position"]


def test_hostile_application_numbers_are_refused(cli_env: dict[str, str]) -> None:
    for hostile in ("f000000001", "F00000001'; DROP TABLE x;--", "../../etc/passwd", "F0000000011"):
        done = casetrack(cli_env, "status", hostile)
        assert done.returncode == 2
        assert "one uppercase letter and nine digits" in done.stderr
        assert "Traceback" not in done.stderr
    missing = casetrack(cli_env, "status", "Z999999999")
    assert missing.returncode == 1 and "no case Z999999999" in missing.stderr


def test_missing_file_is_a_clear_error(cli_env: dict[str, str]) -> None:
    done = casetrack(cli_env, "ingest", "/nonexistent/file.jsonl")
    assert done.returncode == 2 and "no such file" in done.stderr


def test_logs_carry_no_personal_data(cli_env: dict[str, str]) -> None:
    lines = casegen.generate(20, seed=9, duplicate_share=0.1, invalid_share=0.1)
    env = {**cli_env, "CASETRACK_LOG_LEVEL": "debug"}
    done = casetrack(env, "ingest", "-", stdin="\n".join(lines).encode())
    assert done.returncode == 0
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(entry.get("application_number") and entry.get("event_id") for entry in logged)
    secrets_seen = set()
    for line in lines:
        try:
            payload = json.loads(line).get("payload", {})
        except (ValueError, AttributeError):
            continue
        for role in ("principal_applicant", "sponsor"):
            person = payload.get(role) if isinstance(payload, dict) else None
            if isinstance(person, dict):
                secrets_seen |= {str(v) for k, v in person.items() if v}
        representative = payload.get("representative") if isinstance(payload, dict) else None
        if isinstance(representative, dict):
            secrets_seen |= {str(v) for v in representative.values() if v}
    assert secrets_seen
    for value in secrets_seen:
        pattern = r"(?<![\w@.-])" + re.escape(value) + r"(?![\w@-])"
        assert not re.search(pattern, done.stderr), "personal data in logs"


def test_a_bad_stored_event_neither_halts_projection_nor_breaks_a_rebuild(
    cli_env: dict[str, str], store: CaseStore
) -> None:
    store_nul_in_a_text_column(store, "F000000001")
    lines = casegen.generate(3, seed=5)
    assert casetrack(cli_env, "ingest", "-", stdin="\n".join(lines).encode()).returncode == 0

    assert casetrack(cli_env, "project", "--once").returncode == 0
    rebuilt = casetrack(cli_env, "projections", "rebuild", "case_parties")
    status = casetrack(cli_env, "projections", "status")

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Traceback" not in rebuilt.stderr
    (parties,) = [line for line in status.stdout.splitlines() if line.startswith("case_parties")]
    assert "HALTED" not in parties and "1 dead letters" in parties

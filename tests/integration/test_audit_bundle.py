"""`casetrack audit export` and `audit verify-bundle` end to end: a case's bundle verifies
offline once its database is gone, a tampered one is refused by name, and a newer bundle
proves it extends the checkpoint an auditor kept."""

from __future__ import annotations

import base64
import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from adapters.postgres.event_store import CaseStore
from adapters.postgres.schema import drop_schema
from domain.integrity.checkpoint import generate_key, parse_checkpoint, parse_note, sign_checkpoint
from simulation import casegen
from tests import cli_process
from tests.stores import execute

LINES = casegen.generate(24, seed=11)
NOWHERE = "postgresql://nobody@127.0.0.1:9/nothing?connect_timeout=1"


def casetrack(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    if stdin is None:
        return cli_process.run(args, env)
    return subprocess.run(
        [*cli_process.CASETRACK, *args],
        env=env,
        cwd=cli_process.ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def offline_env(env: dict[str, str]) -> dict[str, str]:
    """No database, and a configuration `Settings.from_env` refuses: verify-bundle must not
    read either."""
    return {
        **env,
        "CASETRACK_DATABASE_URL": NOWHERE,
        "CASETRACK_SCHEMA": "Not A Schema!",
        "CASETRACK_SESSION_MINUTES": "soon",
    }


def ingest(env: dict[str, str], lines: list[str]) -> None:
    ok(casetrack(env, "ingest", "-", stdin="\n".join(lines) + "\n"))


def numbers_by_events(lines: list[str]) -> list[str]:
    """Application numbers, those with the most events first."""
    counts = Counter(json.loads(line)["application_number"] for line in lines)
    return [number for number, _ in counts.most_common()]


def setup(cli_env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], Path]:
    env = {**cli_env, "CASETRACK_SIGNING_KEY": str(tmp_path / "signing.key")}
    key = tmp_path / "public.key"
    key.write_text(ok(casetrack(env, "audit", "keygen", "--name", "test.example/log")))
    return env, key


def test_a_bundle_verifies_offline_after_the_database_is_dropped(
    cli_env: dict[str, str], database_url: str, schema: str, tmp_path: Path
) -> None:
    env, key = setup(cli_env, tmp_path)
    ingest(env, LINES)
    number, other = numbers_by_events(LINES)[:2]
    early = casetrack(env, "audit", "export", number)
    assert early.returncode == 1 and "no checkpoint yet: run `casetrack audit checkpoint`" in (
        early.stderr
    )
    note = ok(casetrack(env, "audit", "checkpoint"))
    bundle_file = tmp_path / "bundle.json"
    bundle_file.write_text(ok(casetrack(env, "audit", "export", number, other)))
    unknown = casetrack(env, "audit", "export", number, "Z000000000")
    assert unknown.returncode == 1 and "no application Z000000000" in unknown.stderr
    assert casetrack(env, "audit", "export", "f12").returncode == 2

    drop_schema(database_url, schema)
    offline = offline_env(env)
    assert casetrack(offline, "audit", "checkpoint").returncode != 0, "the database is gone"
    done = casetrack(offline, "audit", "verify-bundle", str(bundle_file), "--public-key", str(key))
    summary = ok(done)
    bundle = json.loads(bundle_file.read_text())
    events = sum(len(c["events"]) for c in bundle["cases"])
    size = int(note.splitlines()[1])
    assert f"2 cases, {events} events" in summary and f"at size {size}" in summary
    assert f"{number}: versions 1..{len(bundle['cases'][0]['events'])}" in summary
    vkey = key.read_text().strip()
    by_text = casetrack(
        offline, "audit", "verify-bundle", "-", "--public-key", vkey, stdin=bundle_file.read_text()
    )
    assert ok(by_text) == summary

    event = bundle["cases"][1]["events"][1]
    stored = bytearray(base64.b64decode(event["state"]))
    stored[stored.index(b"T") + 1] ^= 1  # inside the first ISO time: a digit changes
    event["state"] = base64.b64encode(bytes(stored)).decode()
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(bundle))
    refused = casetrack(offline, "audit", "verify-bundle", str(altered), "--public-key", vkey)
    assert refused.returncode == 1
    assert f"case {other} version 2: the stored event no longer gives its leaf" in refused.stderr
    assert "payload" in refused.stderr and refused.stdout == ""


def test_a_newer_bundle_extends_the_checkpoint_the_auditor_kept(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env, key = setup(cli_env, tmp_path)
    half = len(LINES) // 2
    ingest(env, LINES[:half])
    first = tmp_path / "first.note"
    first.write_text(ok(casetrack(env, "audit", "checkpoint")))
    first_size = int(first.read_text().splitlines()[1])
    ingest(env, LINES[half:])
    # a case with events on both sides of the first checkpoint
    early = {json.loads(line)["application_number"] for line in LINES[:half]}
    number = next(n for n in numbers_by_events(LINES[half:]) if n in early)

    uncovered = casetrack(env, "audit", "export", number)
    partial: dict[str, Any] = json.loads(ok(uncovered))
    assert partial["cases"][0]["uncovered_events"] > 0
    assert "run `casetrack audit checkpoint` first" in uncovered.stderr

    ok(casetrack(env, "audit", "checkpoint"))
    offline = offline_env(env)
    newer = tmp_path / "newer.json"
    newer.write_text(ok(casetrack(env, "audit", "export", number, "--since", str(first_size))))
    bundle = json.loads(newer.read_text())
    assert bundle["consistency"]["from"] == first_size
    assert bundle["cases"][0]["uncovered_events"] == 0
    assert len(bundle["cases"][0]["events"]) > len(partial["cases"][0]["events"])
    verify = ("audit", "verify-bundle", str(newer), "--public-key", str(key))
    summary = ok(casetrack(offline, *verify, "--checkpoint", str(first)))
    assert f"extends the kept checkpoint of size {first_size}" in summary

    without = tmp_path / "without.json"
    without.write_text(ok(casetrack(env, "audit", "export", number)))
    missing = casetrack(offline, "audit", "verify-bundle", str(without), "--public-key",
                        str(key), "--checkpoint", str(first))  # fmt: skip
    assert missing.returncode == 1 and f"--since {first_size}" in missing.stderr

    kept = parse_checkpoint(parse_note(first.read_text()).text)  # the same tree, and name
    foreign = tmp_path / "foreign.note"
    old_skey, old_vkey = generate_key("test.example/log")
    foreign.write_text(sign_checkpoint(kept, old_skey))
    refused = casetrack(offline, *verify, "--checkpoint", str(foreign))
    assert refused.returncode == 1 and "the older checkpoint: the note is not signed by" in (
        refused.stderr
    )
    # the same note after a key rotation: the auditor accepts the old key and the new one
    rotated = ok(
        casetrack(offline, *verify, "--public-key", old_vkey, "--checkpoint", str(foreign))
    )
    assert f"extends the kept checkpoint of size {first_size}" in rotated
    beyond = casetrack(env, "audit", "export", number, "--since", str(10**9))
    assert beyond.returncode == 1 and "beyond the latest checkpoint" in beyond.stderr


def test_export_from_a_log_that_lost_events_its_checkpoint_covers_says_so(
    cli_env: dict[str, str], tmp_path: Path, store: CaseStore
) -> None:
    env, _ = setup(cli_env, tmp_path)
    ingest(env, LINES[:6])
    size = int(ok(casetrack(env, "audit", "checkpoint")).splitlines()[1])
    number = numbers_by_events(LINES[:6])[0]
    execute(store, "DELETE FROM {schema}.event_hashes WHERE leaf_index >= %s", (size - 2,))
    done = casetrack(env, "audit", "export", number)
    assert done.returncode == 1 and done.stdout == ""
    assert (
        f"casetrack: the log no longer holds the events checkpoint {size} covers: run"
        " `casetrack audit verify`" in done.stderr
    )
    assert "Traceback" not in done.stderr

"""`casetrack audit verify` on real PostgreSQL: a log written the normal way verifies; each
tampering done with plain SQL (UPDATE, DELETE) makes it exit 1 and name the spot: the case,
the version, and the field or the link."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, LiteralString
from uuid import UUID

import pytest

from adapters.postgres.event_store import CaseStore
from consumers.file_ingest import ingest_lines
from simulation import casegen
from tests import cli_process
from tests.integration.test_ingest import _lines
from tests.stores import count, execute, rows


@pytest.fixture
def log(store: CaseStore) -> CaseStore:
    """A log of 12 cases ingested as a file is."""
    ingest_lines(_lines(casegen.generate(12, seed=5)), "file:5", store)
    assert count(store, "event_hashes") > 100
    return store


def verify(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return cli_process.run(["audit", "verify", *args], env)


def verified(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = verify(env, "--json", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def failed(env: dict[str, str], *args: str) -> str:
    """The finding `audit verify` prints (as text), after checking it exited 1."""
    done = verify(env, *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("FAILED: ")
    return done.stdout


def event(store: CaseStore, version: int, nth: int = 0) -> dict[str, Any]:
    """The nth event (in log order) whose case version is `version`, of a case that has
    events after it."""
    found = rows(
        store,
        "SELECT e.notification_id, e.originator_id AS case_id, e.originator_version AS version"
        " FROM {schema}.{events} e WHERE e.originator_version = %s AND EXISTS (SELECT FROM"
        " {schema}.{events} n WHERE n.originator_id = e.originator_id"
        " AND n.originator_version = %s) ORDER BY e.notification_id",
        (version, version + 1),
    )
    return dict(found[nth])


def sql(store: CaseStore, statement: LiteralString, *params: Any, **names: str) -> None:
    """Run a tampering statement; it must touch a row."""
    assert execute(store, statement, params, **names) >= 1


def test_an_untouched_log_verifies(log: CaseStore, cli_env: dict[str, str]) -> None:
    result = verified(cli_env)
    n = count(log, "event_hashes")
    assert (result["events"], result["size"], result["cases"]) == (n, n, 12)
    assert len(result["root"]) == 64
    text = verify(cli_env).stdout
    assert f"ok: {n:,} events of 12 cases verified" in text
    assert "no checkpoint to check the tree against" in text


def test_a_changed_payload_byte(log: CaseStore, cli_env: dict[str, str]) -> None:
    target = event(log, 2)
    sql(
        log,
        "UPDATE {schema}.{events} SET state = set_byte(state, length(state) - 3,"
        " get_byte(state, length(state) - 3) # 1) WHERE notification_id = %s",
        target["notification_id"],
    )
    said = failed(cli_env)
    assert f"case {target['case_id']} version 2" in said
    assert "was altered" in said and "payload" in said


def test_a_changed_topic(log: CaseStore, cli_env: dict[str, str]) -> None:
    target = event(log, 3)
    sql(
        log,
        "UPDATE {schema}.{events} SET topic = 'domain.case:Case.Withdrawn'"
        " WHERE notification_id = %s",
        target["notification_id"],
    )
    said = failed(cli_env)
    assert f"case {target['case_id']} version 3" in said
    assert said.rstrip().endswith("changed event type")


def test_two_versions_swapped(log: CaseStore, cli_env: dict[str, str]) -> None:
    case = event(log, 2)["case_id"]
    for old, new in ((2, -2), (3, 2), (-2, 3)):  # the primary key forbids a one-step swap
        sql(
            log,
            "UPDATE {schema}.{events} SET originator_version = %s"
            " WHERE originator_id = %s AND originator_version = %s",
            new,
            case,
            old,
        )
    said = failed(cli_env)
    assert f"case {case}: versions 2 and 3 were swapped" in said


def test_a_deleted_event(log: CaseStore, cli_env: dict[str, str]) -> None:
    target = event(log, 4)
    sql(log, "DELETE FROM {schema}.{events} WHERE notification_id = %s", target["notification_id"])
    said = failed(cli_env)
    assert f"case {target['case_id']} version 4" in said
    assert "is not in the events table: it was deleted" in said


def test_an_event_and_its_hash_row_deleted(log: CaseStore, cli_env: dict[str, str]) -> None:
    target = event(log, 2, nth=3)
    [hashed] = rows(
        log,
        "SELECT leaf_index FROM {schema}.event_hashes WHERE notification_id = %s",
        (target["notification_id"],),
    )
    for table in ("casetrack_events", "event_hashes"):
        sql(
            log,
            "DELETE FROM {schema}.{table} WHERE notification_id = %s",
            target["notification_id"],
            table=table,
        )
    said = failed(cli_env)
    assert f"leaf index {hashed['leaf_index']} is missing" in said
    assert "its hash row were deleted" in said
    # One case's chain alone shows the gap too.
    number = _application_number(log, target["case_id"])
    said = failed(cli_env, "--application", number)
    assert f"case {target['case_id']} version 3" in said
    assert "version 2 is missing from the log" in said


def test_a_rewritten_chain_link(log: CaseStore, cli_env: dict[str, str]) -> None:
    target = event(log, 5)
    sql(
        log,
        "UPDATE {schema}.event_hashes SET chain = sha256(chain) WHERE notification_id = %s",
        target["notification_id"],
    )
    said = failed(cli_env)
    assert f"the chain link of case {target['case_id']} version 5" in said
    assert "does not follow from link 4" in said


def test_a_log_hashed_by_the_backfill_verifies(log: CaseStore, cli_env: dict[str, str]) -> None:
    """An older log (no event_hashes yet) gets its hashes from `db init`, and verifies."""
    before = verified(cli_env)
    for table in ("event_hashes", "event_hashes_backfill"):  # as before the tables existed
        execute(log, "DELETE FROM {schema}.{table}", table=table)
    assert "no event_hashes row" in failed(cli_env)
    assert cli_process.run(["db", "init"], cli_env).returncode == 0
    assert verified(cli_env)["root"] == before["root"]


def test_a_rewrite_with_every_hash_recomputed_fails_only_a_kept_checkpoint(
    log: CaseStore, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The attacker edits an event, recomputes every hash (`db init` after deleting them)
    and deletes the stored checkpoints: the log is consistent again, but the checkpoint an
    auditor kept no longer matches."""
    assert cli_process.run(["audit", "keygen"], cli_env).returncode == 0
    signed = cli_process.run(["audit", "checkpoint"], cli_env)
    kept = tmp_path / "kept.note"
    kept.write_text(signed.stdout)
    public = cli_process.run(["audit", "public-key"], cli_env).stdout.strip()
    assert verified(cli_env)["checkpoints_matched"] == [count(log, "event_hashes")]
    keyless = verified(dict(cli_env, CASETRACK_SIGNING_KEY=str(tmp_path / "absent.key")))
    assert keyless["checkpoints_matched"] == []
    assert keyless["notes"] == [
        "1 stored checkpoint not used: no verifier key to check signatures with"
        " (--public-key, or CASETRACK_SIGNING_KEY), so the tree was checked against no"
        " checkpoint"
    ]

    target = event(log, 2)
    sql(
        log,
        "UPDATE {schema}.{events} SET state = set_byte(state, length(state) - 3,"
        " get_byte(state, length(state) - 3) # 1) WHERE notification_id = %s",
        target["notification_id"],
    )
    said = failed(cli_env)  # the stored checkpoint catches it first...
    assert f"case {target['case_id']} version 2" in said
    for table in ("event_hashes", "event_hashes_backfill", "checkpoints", "merkle_nodes"):
        execute(log, "DELETE FROM {schema}.{table}", table=table)
    assert cli_process.run(["db", "init"], cli_env).returncode == 0
    assert verified(cli_env)["checkpoints_matched"] == []  # ...then nothing in the database

    said = failed(cli_env, "--checkpoint", str(kept), "--public-key", public)
    n = count(log, "event_hashes")
    assert f"the first {n} events do not have the root of the checkpoint at size {n}" in said

    other = dict(cli_env, CASETRACK_SIGNING_KEY=str(tmp_path / "other.key"))
    assert cli_process.run(["audit", "keygen"], other).returncode == 0
    forged = cli_process.run(["audit", "checkpoint"], other).stdout
    (tmp_path / "forged.note").write_text(forged)
    refused = verify(cli_env, "--checkpoint", str(tmp_path / "forged.note"), "--public-key", public)
    assert refused.returncode == 2
    assert "does not verify: the note is not signed by" in refused.stderr


def test_events_after_the_latest_checkpoint_are_said_to_be_uncovered(
    log: CaseStore, cli_env: dict[str, str]
) -> None:
    assert cli_process.run(["audit", "keygen"], cli_env).returncode == 0
    assert cli_process.run(["audit", "checkpoint"], cli_env).returncode == 0
    signed = count(log, "event_hashes")
    ingest_lines(_lines(casegen.generate(2, seed=6)), "file:6", log)
    result = verified(cli_env)
    assert result["checkpoints_matched"] == [signed]
    later = count(log, "event_hashes") - signed
    assert result["notes"] == [f"the last {later:,} events are not covered by a checkpoint yet"]


def test_usage_and_a_schema_before_db_init(cli_env: dict[str, str]) -> None:
    bad = verify(cli_env, "--application", "nope")
    assert bad.returncode == 2 and "'nope' is not an application number" in bad.stderr
    both = verify(cli_env, "--application", "F000000001", "--checkpoint", "x")
    assert both.returncode == 2 and "--checkpoint covers the whole log" in both.stderr
    missing = verify(dict(cli_env, CASETRACK_SCHEMA="never_initialised"))
    assert missing.returncode == 1
    assert "run `casetrack db init`" in missing.stderr


def _application_number(store: CaseStore, case: UUID) -> str:
    from domain.application_number import case_id

    numbers = [
        r["number"]
        for r in rows(
            store,
            "SELECT DISTINCT convert_from(state, 'UTF8')::jsonb->>'application_number' AS number"
            " FROM {schema}.{events} WHERE originator_version = 1",
        )
    ]
    [number] = [n for n in numbers if case_id(n) == case]
    return str(number)


def test_worker_processes_give_the_same_report_and_the_same_finding(
    log: CaseStore, cli_env: dict[str, str]
) -> None:
    """Stretches of the log checked in worker processes (as on a large log) report what one
    walk reports, and a tampering near a cut between stretches is named the same way."""
    alone = log.integrity.verify(workers=1)
    assert log.integrity.verify(workers=3) == alone
    assert verified(cli_env, "--workers", "2")["root"] == alone.root.hex()  # type: ignore[union-attr]

    n = count(log, "event_hashes")
    [row] = rows(
        log,
        "SELECT notification_id FROM {schema}.event_hashes WHERE leaf_index = %s",
        (n // 2 - 1,),  # the last event of the first of two stretches
    )
    sql(log, "DELETE FROM {schema}.{events} WHERE notification_id = %s", row["notification_id"])
    one_walk = failed(cli_env, "--workers", "1")
    assert "is not in the events table: it was deleted" in one_walk
    assert failed(cli_env, "--workers", "2") == one_walk


def test_stored_checkpoints_must_be_signed_by_an_accepted_key(
    log: CaseStore, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A key rotation: the old key signed the first checkpoint, the new one the second.
    Every stored checkpoint must verify under one of the accepted keys (--public-key,
    repeatable; by default the signing key's): one that does not is a finding, never
    skipped, since an attacker with SQL can sign notes with a key of their own."""
    from adapters import signing_key
    from domain.integrity.checkpoint import Checkpoint, generate_key, sign_checkpoint

    assert cli_process.run(["audit", "keygen"], cli_env).returncode == 0
    old_public = cli_process.run(["audit", "public-key"], cli_env).stdout.strip()
    assert cli_process.run(["audit", "checkpoint"], cli_env).returncode == 0
    first = count(log, "event_hashes")
    rotated = dict(cli_env, CASETRACK_SIGNING_KEY=str(tmp_path / "new.key"))
    assert cli_process.run(["audit", "keygen"], rotated).returncode == 0
    new_key_file = tmp_path / "new.public"
    new_key_file.write_text(cli_process.run(["audit", "public-key"], rotated).stdout)
    ingest_lines(_lines(casegen.generate(2, seed=6)), "file:6", log)
    after = ["audit", "checkpoint", "--after-rotation", old_public]
    assert cli_process.run(after, rotated).returncode == 0
    second = count(log, "event_hashes")

    said = failed(rotated)  # the new key alone: the old key's checkpoint is not accepted
    assert f"the stored checkpoint at size {first} " in said
    assert "the checkpoints table was altered or the note signed by another key" in said
    assert "--public-key OLD --public-key NEW" in said
    both = ("--public-key", old_public, "--public-key", str(new_key_file))
    assert verified(rotated, *both)["checkpoints_matched"] == [first, second]

    # An attacker's key under the log's name signs a note over the same tree...
    [row] = rows(log, "SELECT root FROM {schema}.checkpoints WHERE size = %s", (second,))
    mallory, _ = generate_key(signing_key.DEFAULT_NAME)
    forged = sign_checkpoint(Checkpoint(signing_key.DEFAULT_NAME, second, row["root"]), mallory)
    sql(log, "UPDATE {schema}.checkpoints SET note = %s WHERE size = %s", forged, second)
    done = verify(rotated, "--json", *both)
    assert done.returncode == 1
    finding = json.loads(done.stdout)
    assert finding["ok"] is False and finding["kind"] == "checkpoint_mismatch"
    assert f"the stored checkpoint at size {second} does not verify" in finding["message"]
    # ...or the accepted key signs a note of another log (its origin is not the key's name).
    new_signer = signing_key.signer(tmp_path / "new.key")
    other = Checkpoint("elsewhere.example/log", second, row["root"])
    other_log = sign_checkpoint(other, new_signer)
    sql(log, "UPDATE {schema}.checkpoints SET note = %s WHERE size = %s", other_log, second)
    said = failed(rotated, *both)
    assert f"size {second}" in said and "is for log 'elsewhere.example/log'" in said


def test_a_checkpoints_row_is_checked_by_its_signed_note(
    log: CaseStore, cli_env: dict[str, str]
) -> None:
    """The size and root columns are not signed: the tree is checked against the note's,
    and a row whose columns differ from its note is a finding."""
    assert cli_process.run(["audit", "keygen"], cli_env).returncode == 0
    assert cli_process.run(["audit", "checkpoint"], cli_env).returncode == 0
    n = count(log, "event_hashes")
    sql(log, "UPDATE {schema}.checkpoints SET root = sha256(root) WHERE size = %s", n)
    said = failed(cli_env)
    assert f"the checkpoints row at size {n} differs from its signed note" in said
    assert "the checkpoints table was altered" in said


def test_without_any_key_the_stored_checkpoints_are_said_loudly_to_go_unchecked(
    log: CaseStore, cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert cli_process.run(["audit", "keygen"], cli_env).returncode == 0
    assert cli_process.run(["audit", "checkpoint"], cli_env).returncode == 0
    keyless = dict(cli_env, CASETRACK_SIGNING_KEY=str(tmp_path / "absent.key"))
    for args in ((), ("--json",)):
        done = verify(keyless, *args)
        assert done.returncode == 0
        assert "WARNING: 1 stored checkpoint was NOT checked" in done.stderr
        assert "--public-key" in done.stderr


@pytest.mark.parametrize("workers", ["0", "65", "-1", "two"])
def test_workers_are_bounded(cli_env: dict[str, str], workers: str) -> None:
    done = verify(cli_env, "--workers", workers)
    assert done.returncode == 2
    assert "--workers: N must be a whole number from 1 to 64" in done.stderr

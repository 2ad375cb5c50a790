"""`casetrack privacy rotate-kek|retention` and `dead-letters expire` as an operator runs
them, against the real PostgreSQL: what they change, and that they refuse what they must."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.postgres.event_store import CaseStore
from adapters.privacy.kek import KekError, local_kek
from consumers.file_ingest import ingest_lines
from domain.application_number import case_id
from projections.projector import Projector
from projections.registry import select
from simulation import casegen
from tests import cli_process
from tests.stores import count, execute, rows
from tests.vault import TEST_VAULT


def ingest(store: CaseStore, cases: int, seed: int) -> list[dict[str, object]]:
    lines = casegen.generate(cases, seed=seed)
    assert ingest_lines([line.encode() for line in lines], "privacy.jsonl", store).rejected == 0
    for projection in select(None):
        Projector(store, projection).catch_up()
    return [json.loads(line) for line in lines]


def test_rotate_kek_rewraps_every_key_and_readers_need_only_the_new_one(
    database_url: str, schema: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    old = replace(TEST_VAULT, kek_file=tmp_path / "old.key", generate=True)
    writer = CaseStore(database_url, schema, old)
    events = ingest(writer, 3, seed=5)
    writer.close()
    new_kek = local_kek(tmp_path / "new.key")
    env = dict(cli_env, CASETRACK_KEK_FILE=str(tmp_path / "new.key"))

    refused = cli_process.run(["privacy", "rotate-kek"], env)
    assert refused.returncode == 2 and "CASETRACK_KEK_PREVIOUS_FILE" in refused.stderr
    number = str(events[0]["application_number"])
    unrotated = CaseStore(database_url, schema, replace(old, kek_file=tmp_path / "new.key"))
    with pytest.raises(KekError, match="does not hold"):
        unrotated.load([case_id(number)])
    unrotated.close()

    rotated = cli_process.run(
        ["privacy", "rotate-kek"], dict(env, CASETRACK_KEK_PREVIOUS_FILE=str(tmp_path / "old.key"))
    )
    assert rotated.returncode == 0, rotated.stderr
    reader = CaseStore(database_url, schema, replace(old, kek_file=tmp_path / "new.key"))
    try:
        assert f"rewrapped {count(reader, 'data_keys')} data keys" in rotated.stdout
        kek_ids = {r["kek_id"] for r in rows(reader, "SELECT kek_id FROM {schema}.data_keys")}
        assert kek_ids == {new_kek.key_id}
        case = reader.load([case_id(number)])[case_id(number)]
        received = events[0]["payload"]
        assert case.principal_applicant.uci == received["principal_applicant"]["uci"]  # type: ignore[index, union-attr]
    finally:
        reader.close()
    again = cli_process.run(
        ["privacy", "rotate-kek"], dict(env, CASETRACK_KEK_PREVIOUS_FILE=str(tmp_path / "old.key"))
    )
    assert "rewrapped 0 data keys" in again.stdout  # resumable: nothing left to do


def test_retention_erases_the_files_closed_longer_than_the_period_once(
    store: CaseStore, cli_env: dict[str, str]
) -> None:
    events = ingest(store, 30, seed=4)
    closed = {
        str(e["application_number"]) for e in events
        if e["type"] in ("decision.made", "application.withdrawn")
    }  # fmt: skip
    assert closed
    dry = cli_process.run(["privacy", "retention", "--closed-for", "1d", "--dry-run", "--json"],
                          cli_env)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    listed = json.loads(dry.stdout)
    assert set(listed["files"]) == closed and listed["erased"] is None
    assert count(store, "data_keys", "wrapped IS NULL") == 0

    assert json.loads(cli_process.run(
        ["privacy", "retention", "--closed-for", "100y", "--json"], cli_env
    ).stdout)["files"] == []  # fmt: skip
    done = cli_process.run(["privacy", "retention", "--closed-for", "1d", "--json"], cli_env)
    report = json.loads(done.stdout)["erased"]
    assert report["events_appended"] == len(closed) and report["cases"] == sorted(closed)
    open_file = next(str(e["application_number"]) for e in events
                     if str(e["application_number"]) not in closed)  # fmt: skip
    assert store.load([case_id(open_file)])[case_id(open_file)].erased == set()
    for number in closed:
        assert store.load([case_id(number)])[case_id(number)].principal_applicant.uci == "[erased]"  # type: ignore[union-attr]
    again = cli_process.run(["privacy", "retention", "--closed-for", "1d", "--json"], cli_env)
    assert json.loads(again.stdout)["files"] == []
    bad = cli_process.run(["privacy", "retention", "--closed-for", "two years"], cli_env)
    assert bad.returncode == 2 and "2y" in bad.stderr


def test_dead_letters_lose_their_raw_input_after_the_retention_and_say_so_on_retry(
    store: CaseStore, cli_env: dict[str, str]
) -> None:
    ingest_lines([b'{"not": "an event", "uci": "11112222"}', b"also bad"], "bad.jsonl", store)
    execute(store, "UPDATE {schema}.dead_letters SET recorded_at = now() - interval '31 days'"
                   " WHERE raw = 'also bad'")  # fmt: skip
    expired = cli_process.run(["dead-letters", "expire"], cli_env)
    assert expired.returncode == 0 and "dropped the raw input of 1 dead letters" in expired.stdout
    letters = {
        r["id"]: r for r in rows(store, "SELECT id, raw, raw_dropped_at FROM {schema}.dead_letters")
    }
    dropped = [i for i, r in letters.items() if r["raw_dropped_at"] is not None]
    assert len(dropped) == 1 and bytes(letters[dropped[0]]["raw"]) == b""
    kept = [i for i in letters if i not in dropped]
    assert bytes(letters[kept[0]]["raw"]).startswith(b'{"not"')
    retried = cli_process.run(["dead-letters", "retry", str(dropped[0])], cli_env)
    assert retried.returncode == 1 and "no raw input any more" in retried.stderr
    assert "Traceback" not in retried.stderr
    shorter = cli_process.run(
        ["dead-letters", "expire"], dict(cli_env, CASETRACK_DEAD_LETTER_RAW_DAYS="0")
    )
    assert shorter.returncode == 2 and "CASETRACK_DEAD_LETTER_RAW_DAYS" in shorter.stderr


def test_erase_names_unknown_files_and_refuses_malformed_input(cli_env: dict[str, str]) -> None:
    unknown = cli_process.run(["privacy", "erase", "--application", "F999999999"], cli_env)
    assert unknown.returncode == 1 and "no such file: F999999999" in unknown.stderr
    malformed = cli_process.run(["privacy", "erase", "--application", "f1; DROP"], cli_env)
    assert malformed.returncode == 2 and "nine digits" in malformed.stderr
    nothing = cli_process.run(["privacy", "erase"], cli_env)
    assert nothing.returncode == 2 and "--person or --application" in nothing.stderr
    assert "Traceback" not in unknown.stderr + malformed.stderr + nothing.stderr

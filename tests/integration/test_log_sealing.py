"""`casetrack db init` on a log written before personal data was encrypted: it seals every
plaintext value in place (the one sanctioned rewrite), recomputes the affected leaves and
chains, and opens a new, signed epoch of the log's tree; interrupted, it resumes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapters import signing_key
from adapters.postgres.event_store import CaseStore
from adapters.postgres.integrity_log import LogBeingRewritten
from adapters.privacy.log_sealing import SealingRefused, seal_plaintext_log
from adapters.privacy.personal_codec import PersonalDataCodec
from consumers.file_ingest import ingest_lines
from domain.application_number import case_id
from domain.integrity.checkpoint import verify_checkpoint
from domain.integrity.epochs import epoch_of, retired_digest, verify_transition
from projections.projector import Projector
from projections.registry import select
from simulation import casegen
from tests import cli_process
from tests.stores import count, execute, rows
from tests.vault import TEST_VAULT


class _WritesPlaintext(PersonalDataCodec):
    """The release before encryption: the same stored JSON, personal values as they are."""

    @staticmethod
    def holds_personal_data(topic: str) -> bool:
        return False


def plaintext_store(database_url: str, schema: str) -> CaseStore:
    store = CaseStore(database_url, schema, TEST_VAULT)
    store.app.mapper.personal = _WritesPlaintext(store.app.load_keys)
    return store


def ingest(store: CaseStore, lines: list[str]) -> None:
    assert ingest_lines([line.encode() for line in lines], "old.jsonl", store).rejected == 0


def personal_values(lines: list[str]) -> set[str]:
    """Every UCI, name and email the lines' received events hold (four characters and up)."""
    found: set[str] = set()
    for line in lines:
        event = json.loads(line)
        if event["type"] == "application.received":
            for role in ("principal_applicant", "sponsor"):
                party = event["payload"][role]
                found |= {str(party[f]) for f in ("uci", "family_name", "email") if party.get(f)}
    return {value for value in found if len(value) >= 4}


def stored_bytes(store: CaseStore) -> bytes:
    return b"\n".join(bytes(r["state"]) for r in rows(store, "SELECT state FROM {schema}.{events}"))


def view_rows(store: CaseStore) -> list[dict[str, object]]:
    return [dict(r) for r in rows(store, "SELECT * FROM {schema}.case_status ORDER BY case_id")]


def test_db_init_seals_an_old_log_into_a_signed_epoch_that_verifies(
    database_url: str, schema: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    lines = casegen.generate(25, seed=12)
    old = plaintext_store(database_url, schema)
    ingest(old, lines)
    for projection in select(None):
        Projector(old, projection).catch_up()
    before = view_rows(old)
    number = json.loads(lines[0])["application_number"]
    plaintext = personal_values(lines)
    assert all(value.encode() in stored_bytes(old) for value in plaintext)
    old.close()
    assert cli_process.run(["audit", "keygen"], cli_env).returncode == 0
    signed = cli_process.run(["audit", "checkpoint"], cli_env)
    assert signed.returncode == 0, signed.stderr
    (tmp_path / "kept.txt").write_text(signed.stdout)

    migrated = cli_process.run(["db", "init"], cli_env)
    assert migrated.returncode == 0, migrated.stderr
    assert "the log's tree is now in epoch 2" in migrated.stdout
    assert "transition and first checkpoint signed" in migrated.stdout

    store = CaseStore(database_url, schema, TEST_VAULT)
    try:
        dump = stored_bytes(store)
        assert [v for v in plaintext if v.encode() in dump] == []
        case = store.load([case_id(number)])[case_id(number)]
        received = json.loads(lines[0])["payload"]["principal_applicant"]
        assert case.principal_applicant is not None
        assert case.principal_applicant.uci == received["uci"]
        vkey = signing_key.verifier(Path(cli_env["CASETRACK_SIGNING_KEY"]))
        (epoch,) = store.integrity.retirements()
        transition = verify_transition(epoch[0].note or "", vkey)
        kept = verify_checkpoint(signed.stdout, vkey)
        assert (transition.epoch, transition.previous_size) == (2, kept.size)
        assert transition.previous_root == kept.root
        assert transition.retired_sha256 == retired_digest([c.note for c in epoch[1]])
        latest = store.integrity.latest()
        assert latest is not None and latest.size == kept.size and latest.root != kept.root
        assert epoch_of(verify_checkpoint(latest.note, vkey).extensions) == 2
    finally:
        store.close()

    verified = cli_process.run(["audit", "verify", "--checkpoint", str(tmp_path / "kept.txt")],
                               cli_env)  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"kept checkpoint {kept.size:,} is of epoch 1" in verified.stdout
    rebuilt = cli_process.run(["projections", "rebuild", "case_status"], cli_env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    reader = CaseStore(database_url, schema, TEST_VAULT)
    try:
        assert view_rows(reader) == before
    finally:
        reader.close()
    erased = cli_process.run(["privacy", "erase", "--application", number], cli_env)
    assert erased.returncode == 0, erased.stderr
    again = cli_process.run(["db", "init"], cli_env)
    assert again.returncode == 0 and "sealed" not in again.stdout  # nothing left to seal
    assert cli_process.run(["audit", "verify"], cli_env).returncode == 0


def test_an_interrupted_rewrite_resumes_and_writers_meanwhile_chain_right(
    database_url: str, schema: str, tmp_path: Path
) -> None:
    lines = casegen.generate(20, seed=3)
    third = len(lines) // 3
    old = plaintext_store(database_url, schema)
    ingest(old, lines[:third])
    old.close()
    signer = signing_key.signer(_key(tmp_path))
    store = CaseStore(database_url, schema, TEST_VAULT)
    try:
        ingest(store, lines[third : 2 * third])  # sealed: the writer now knows these links
        store.integrity.checkpoint(signer)

        def crash(done: int) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            seal_plaintext_log(store, signer, batch=5, progress=crash)
        with pytest.raises(LogBeingRewritten):
            store.integrity.checkpoint(signer)
        (open_epoch,) = rows(store, "SELECT rewritten, finished_at FROM {schema}.log_epochs")
        assert 0 < open_epoch["rewritten"] <= 5 and open_epoch["finished_at"] is None
        ingest(store, lines[2 * third :])  # continues cases whose chains the rewrite changes

        resumed = seal_plaintext_log(store, signer, batch=5)
        assert resumed.resumed and resumed.signed and resumed.epoch == 2
        assert count(store, "retired_checkpoints") == 1
        store.integrity.verify()  # raises LogTampered at the first bad leaf or link
        more = casegen.generate(3, seed=99)
        ingest(store, more)
        store.integrity.verify()
    finally:
        store.close()


def test_a_rewrite_is_refused_untouched_unsigned_or_over_an_altered_log(
    database_url: str, schema: str, tmp_path: Path
) -> None:
    old = plaintext_store(database_url, schema)
    ingest(old, casegen.generate(5, seed=8))
    old.close()
    store = CaseStore(database_url, schema, TEST_VAULT)
    signer = signing_key.signer(_key(tmp_path))
    try:
        store.integrity.checkpoint(signer)
        with pytest.raises(SealingRefused, match="CASETRACK_SIGNING_KEY"):
            seal_plaintext_log(store, None)
        execute(store, "UPDATE {schema}.{events} SET state = state || ' '::bytea"
                       " WHERE originator_version = 2")  # fmt: skip
        altered = stored_bytes(store)
        with pytest.raises(SealingRefused, match="does not verify"):
            seal_plaintext_log(store, signer)
        assert stored_bytes(store) == altered and count(store, "log_epochs") == 0
        assert count(store, "checkpoints") == 1
    finally:
        store.close()


def _key(folder: Path) -> Path:
    path = folder / "signing.key"
    if not path.exists():
        signing_key.create(path)
    return path


def test_two_db_inits_at_once_seal_the_log_once(
    database_url: str, schema: str, tmp_path: Path
) -> None:
    old = plaintext_store(database_url, schema)
    ingest(old, casegen.generate(10, seed=17))
    old.close()
    signer = signing_key.signer(_key(tmp_path))
    stores = [CaseStore(database_url, schema, TEST_VAULT) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(lambda s: seal_plaintext_log(s, signer, batch=7), stores))
        assert sorted(r.epoch or 0 for r in reports) == [0, 2]  # one sealed, one found it done
        assert count(stores[0], "log_epochs") == 1
        stores[0].integrity.verify()
    finally:
        for store in stores:
            store.close()


def test_a_writer_that_wrote_during_a_rewrite_rereads_its_links_after_the_epoch_closes(
    database_url: str, schema: str, tmp_path: Path
) -> None:
    """EventHashes caches each case's last link at commit (``committed``), also
    while an epoch is open; when the rewrite then rehashes those cases and closes the epoch,
    the epoch count the cache was filled at is unchanged, so the writer's next batch chains
    onto the links the rewrite replaced (audit verify: the case's next link is wrong)."""
    lines = casegen.generate(20, seed=3)
    half, three_quarters = len(lines) // 2, 3 * len(lines) // 4
    old = plaintext_store(database_url, schema)
    ingest(old, lines[:half])
    old.close()
    signer = signing_key.signer(_key(tmp_path))
    store = CaseStore(database_url, schema, TEST_VAULT)
    try:
        store.integrity.checkpoint(signer)

        def crash(done: int) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            seal_plaintext_log(store, signer, batch=5, progress=crash)
        # While the epoch is open: the writer continues plaintext cases (and caches links).
        ingest(store, lines[half:three_quarters])
        # The rest of the rewrite (in another process: `db init`) rehashes them and closes.
        other = CaseStore(database_url, schema, TEST_VAULT)
        try:
            assert seal_plaintext_log(other, signer, batch=5).signed
        finally:
            other.close()
        ingest(store, lines[three_quarters:])  # the same cases, continued
        store.integrity.verify()  # raises LogTampered at the first bad link
    finally:
        store.close()

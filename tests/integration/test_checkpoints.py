"""Signed checkpoints of the log's Merkle tree, and proofs read from PostgreSQL: they agree
with the in-memory RFC 6962 algorithms at every size, across the kept tiles' edges, and
the checkpointer refuses to sign a log that no longer yields its last root."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import signing_key
from adapters.checkpointer import PeriodicCheckpoint
from adapters.postgres.event_store import CaseStore
from adapters.postgres.integrity_log import LogRewritten
from consumers.file_ingest import ingest_lines
from domain.integrity import merkle
from domain.integrity.checkpoint import generate_key, verify_checkpoint
from simulation import casegen
from tests import cli_process
from tests.integration.hashes import stored_hashes
from tests.integration.test_ingest import _lines
from tests.stores import count, execute


def _leaves(store: CaseStore) -> list[bytes]:
    return [h.leaf for h in stored_hashes(store)]


def _ingest(store: CaseStore, cases: int, seed: int) -> None:
    ingest_lines(_lines(casegen.generate(cases, seed=seed)), f"file:{seed}", store)


def test_checkpoints_and_proofs_agree_with_the_rfc_at_every_size(store: CaseStore) -> None:
    signer, verifier = generate_key("test.example/log")
    sizes = []
    for seed in (1, 2, 3):  # past 256 and 512 leaves: proofs mix kept tiles and leaves
        _ingest(store, 90, seed)
        checkpoint, new = store.integrity.checkpoint(signer)
        assert new
        sizes.append(checkpoint.size)
        opened = verify_checkpoint(checkpoint.note, verifier, origin="test.example/log")
        leaves = _leaves(store)
        assert (opened.size, opened.root) == (len(leaves), merkle.root(leaves))
    assert sizes[-1] > 512
    assert store.integrity.checkpoint(signer)[1] is False  # the log did not grow

    leaves = _leaves(store)
    size = sizes[-1]
    indexes = list(range(size))
    for index, proof in zip(indexes, store.integrity.inclusion_proofs(indexes, size), strict=True):
        assert proof == merkle.inclusion_proof(leaves, index)
    for old in range(size + 1):
        assert store.integrity.consistency_proof(old, size) == merkle.consistency_proof(leaves, old)
    # Proofs in an older tree than the tiles cover use the leaves past its edge.
    assert store.integrity.inclusion_proofs([3], sizes[0])[0] == merkle.inclusion_proof(
        leaves[: sizes[0]], 3
    )


def test_a_log_altered_below_the_last_checkpoint_is_never_signed_again(store: CaseStore) -> None:
    signer, _ = generate_key("test.example/log")
    _ingest(store, 40, 4)
    first, _ = store.integrity.checkpoint(signer)
    _ingest(store, 10, 5)
    execute(
        store, "UPDATE {schema}.event_hashes SET leaf = sha256(leaf) WHERE leaf_index = %s",
        (first.size - 1,),
    )  # fmt: skip

    with pytest.raises(LogRewritten, match=f"checkpoint {first.size}"):
        store.integrity.checkpoint(signer)
    assert count(store, "checkpoints") == 1


def test_a_truncated_log_is_never_signed(store: CaseStore) -> None:
    signer, _ = generate_key("test.example/log")
    _ingest(store, 20, 6)
    first, _ = store.integrity.checkpoint(signer)
    execute(store, "DELETE FROM {schema}.event_hashes WHERE leaf_index >= %s", (first.size - 2,))

    with pytest.raises(LogRewritten, match="deleted"):
        store.integrity.checkpoint(signer)


def test_the_daemon_signs_at_most_once_per_interval_and_only_when_the_log_grew(
    store: CaseStore,
) -> None:
    signer, _ = generate_key("test.example/log")
    now = [0.0]
    periodic = PeriodicCheckpoint(store.integrity, signer, 60, clock=lambda: now[0])
    _ingest(store, 10, 7)
    periodic()
    first = count(store, "event_hashes")
    _ingest(store, 10, 8)
    now[0] = 59.0
    periodic()  # not due
    assert [c.size for c in store.integrity.all_checkpoints()] == [first]
    now[0] = 60.0
    periodic()
    now[0] = 200.0
    periodic()  # due, but the log did not grow
    sizes = [c.size for c in store.integrity.all_checkpoints()]
    assert sizes == [first, count(store, "event_hashes")]


def test_keygen_public_key_and_checkpoint_commands(
    store: CaseStore, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _ingest(store, 15, 9)
    missing = cli_process.run(["audit", "checkpoint"], cli_env)
    assert missing.returncode == 1 and "casetrack audit keygen" in missing.stderr

    made = cli_process.run(["audit", "keygen", "--name", "ministry.example/cases"], cli_env)
    assert made.returncode == 0, made.stderr
    key_file = Path(cli_env["CASETRACK_SIGNING_KEY"])
    assert key_file.stat().st_mode & 0o077 == 0
    vkey = made.stdout.strip()
    assert cli_process.run(["audit", "public-key"], cli_env).stdout.strip() == vkey
    again = cli_process.run(["audit", "keygen"], cli_env)
    assert again.returncode == 1 and "never overwritten" in again.stderr
    assert signing_key.verifier(key_file) == vkey

    signed = cli_process.run(["audit", "checkpoint"], cli_env)
    assert signed.returncode == 0, signed.stderr
    opened = verify_checkpoint(signed.stdout, vkey, origin="ministry.example/cases")
    assert opened.size == count(store, "event_hashes")
    assert store.integrity.latest().note == signed.stdout  # type: ignore[union-attr]

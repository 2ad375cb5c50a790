"""Signed checkpoints of the log's Merkle tree, and proofs read from PostgreSQL: they agree
with the in-memory RFC 6962 algorithms at every size, across the kept tiles' edges, and
the checkpointer refuses to sign a log that no longer yields its last root."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from adapters import signing_key
from adapters.checkpointer import sign_if_grown
from adapters.chores import Every
from adapters.postgres.event_store import CaseStore
from adapters.postgres.integrity_log import LogRewritten, UntrustedCheckpoint
from consumers.file_ingest import ingest_lines
from domain.integrity import merkle
from domain.integrity.checkpoint import Checkpoint, generate_key, sign_checkpoint, verify_checkpoint
from domain.integrity.stored import hash_events
from simulation import casegen
from tests import cli_process
from tests.integration.hashes import stored_hashes, stored_rows
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
    periodic = Every(60, partial(sign_if_grown, store.integrity, signer), clock=lambda: now[0])
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

    key_file.rename(tmp_path / "old.key")  # a rotation: a new key at the configured path
    rotated = cli_process.run(["audit", "keygen", "--name", "ministry.example/cases"], cli_env)
    assert rotated.returncode == 0, rotated.stderr
    _ingest(store, 5, 10)
    refused = cli_process.run(["audit", "checkpoint"], cli_env)
    assert refused.returncode == 1 and "--after-rotation" in refused.stderr
    after = cli_process.run(["audit", "checkpoint", "--after-rotation", vkey], cli_env)
    assert after.returncode == 0, after.stderr
    assert verify_checkpoint(after.stdout, rotated.stdout.strip()).size > opened.size


def _rehash_everything(store: CaseStore) -> list[bytes]:
    """What an attacker with SQL (not the key) does after editing an event: recompute every
    leaf, link and index, so the tables agree with each other again. The new leaves."""
    rehashed = hash_events(stored_rows(store), {}, 0)
    execute(store, "DELETE FROM {schema}.event_hashes")
    with store.datastore.transaction(commit=True) as curs:
        store.integrity.hashes.copy(curs, rehashed)
    return [h.leaf for h in rehashed]


def _edit_first_event(store: CaseStore) -> None:
    execute(
        store,
        "UPDATE {schema}.{events} SET state = state || ' '::bytea"
        " WHERE notification_id = (SELECT min(notification_id) FROM {schema}.{events})",
    )


def test_forged_tiles_past_the_last_checkpoint_do_not_get_a_rewrite_signed(
    store: CaseStore,
) -> None:
    signer, _ = generate_key("test.example/log")
    _ingest(store, 40, 11)
    first, _ = store.integrity.checkpoint(signer)
    _ingest(store, 120, 12)
    size = count(store, "event_hashes")
    assert size - size % 256 > first.size  # whole tiles past the checkpoint, to forge
    _edit_first_event(store)
    leaves = _rehash_everything(store)
    frontier, forged = merkle.Frontier(), []
    for leaf in leaves[: size - size % 256]:
        forged += frontier.append(leaf)
    execute(store, "DELETE FROM {schema}.merkle_nodes")
    with store.datastore.transaction(commit=True) as curs:
        store.integrity.nodes.add(curs, forged)

    with pytest.raises(LogRewritten, match=f"root of checkpoint {first.size}"):
        store.integrity.checkpoint(signer)
    assert [c.size for c in store.integrity.all_checkpoints()] == [first.size]


def test_an_edited_checkpoint_row_does_not_get_a_rewrite_signed(store: CaseStore) -> None:
    signer, _ = generate_key("test.example/log")
    _ingest(store, 30, 13)
    first, _ = store.integrity.checkpoint(signer)
    _edit_first_event(store)
    leaves = _rehash_everything(store)
    execute(
        store, "UPDATE {schema}.checkpoints SET root = %s WHERE size = %s",
        (merkle.root(leaves[: first.size]), first.size),
    )  # fmt: skip
    _ingest(store, 5, 14)

    with pytest.raises(UntrustedCheckpoint, match="does not match its own signed note"):
        store.integrity.checkpoint(signer)


@pytest.mark.parametrize("size", ["past the log", "the log's size"])
def test_a_checkpoint_row_signed_by_another_key_is_never_trusted(
    store: CaseStore, size: str
) -> None:
    signer, _ = generate_key("test.example/log")
    mallory, _ = generate_key("test.example/log")
    _ingest(store, 10, 15)
    store.integrity.checkpoint(signer)
    _ingest(store, 5, 16)
    forged_size = 10**9 if size == "past the log" else count(store, "event_hashes")
    note = sign_checkpoint(Checkpoint("test.example/log", forged_size, bytes(32)), mallory)
    execute(
        store, "INSERT INTO {schema}.checkpoints (size, root, note) VALUES (%s, %s, %s)",
        (forged_size, bytes(32), note),
    )  # fmt: skip

    with pytest.raises(UntrustedCheckpoint, match="is not signed by this log's key"):
        store.integrity.checkpoint(signer)


def test_after_a_key_rotation_the_new_key_signs_once_told_the_old_one(store: CaseStore) -> None:
    old, old_verifier = generate_key("test.example/log")
    new, new_verifier = generate_key("test.example/log")
    _ingest(store, 10, 17)
    first, _ = store.integrity.checkpoint(old)
    _ingest(store, 5, 18)
    with pytest.raises(UntrustedCheckpoint, match="--after-rotation"):
        store.integrity.checkpoint(new)

    second, new_one = store.integrity.checkpoint(new, previous_keys=[old_verifier])
    assert new_one
    opened = verify_checkpoint(second.note, new_verifier)
    leaves = _leaves(store)
    old_root = verify_checkpoint(first.note, old_verifier).root
    proof = store.integrity.consistency_proof(first.size, opened.size)
    merkle.verify_consistency(first.size, opened.size, old_root, opened.root, proof)
    assert opened.root == merkle.root(leaves)
    _ingest(store, 5, 19)
    assert store.integrity.checkpoint(new)[1]  # the new key's own checkpoint is the latest now

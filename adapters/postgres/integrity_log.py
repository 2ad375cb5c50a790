"""The log's Merkle tree in PostgreSQL: signed checkpoints and the proofs auditors ask for.

Reads event_hashes (leaves in log order), keeps merkle_nodes (perfect subtrees of 256 leaves
and up) current as it signs, and stores each checkpoint. `verify` streams the whole log (or
some cases) through domain/integrity/verify.py. The hashing and proof algorithms are
domain/integrity's; this module only decides what to read. Before it signs, it checks that
the log still yields the latest checkpoint's root, so it never signs a history that
contradicts one it signed before (docs/integrity.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow

from adapters.postgres.checkpoints import Checkpoints, StoredCheckpoint
from adapters.postgres.event_hashes import EventHashes
from adapters.postgres.log_epochs import Epoch, LogEpochs
from adapters.postgres.merkle_nodes import TILE_HEIGHT, MerkleNodes
from adapters.postgres.parallel_verify import verify_in_parallel, worker_count
from domain.integrity import merkle
from domain.integrity.checkpoint import (
    Checkpoint,
    NoteError,
    parse_vkey,
    sign_checkpoint,
    verify_checkpoint,
    vkey_of,
)
from domain.integrity.epochs import extension_lines
from domain.integrity.stored import HashedEvent, StoredRow
from domain.integrity.verify import LogReport, verify_rows

_LOCK_KEY = 0x43484B50  # "CHKP": one checkpointer at a time
_READ_CHUNK = 50_000
_TILE = 1 << TILE_HEIGHT


class LogRewritten(RuntimeError):
    """The log no longer yields the root of a checkpoint signed before: it was altered (or
    truncated) since. Nothing is signed; `casetrack audit verify` names the spot."""


class LogBeingRewritten(RuntimeError):
    """A sanctioned rewrite of the log (log_sealing, run by `casetrack db init`) has begun
    and not finished: nothing is signed until it has."""

    def __init__(self, epoch: int) -> None:
        super().__init__(
            f"the log is being rewritten into epoch {epoch} (personal data sealed by"
            " `casetrack db init`); no checkpoint is signed until that finishes: run"
            " `casetrack db init` again if it was interrupted"
        )


class UntrustedCheckpoint(LogRewritten):
    """The latest stored checkpoint does not verify with the log's key, or its row disagrees
    with its note: the checkpoints table was altered (or the key changed without saying so).
    Nothing is signed over it."""


def _signed(stored: StoredCheckpoint, keys: Sequence[str], origin: str) -> Checkpoint:
    """The checkpoint `stored`'s note signs, under any of `keys`, for this log's origin."""
    for key in keys:
        try:
            checkpoint = verify_checkpoint(stored.note, key, origin=origin)
        except NoteError:
            continue
        if (checkpoint.size, checkpoint.root) != (stored.size, stored.root):
            raise UntrustedCheckpoint(
                f"the stored checkpoint at size {stored.size} does not match its own signed"
                " note: the checkpoints table was altered; nothing signed"
            )
        return checkpoint
    raise UntrustedCheckpoint(
        f"the stored checkpoint at size {stored.size} is not signed by this log's key"
        f" ({origin}): the checkpoints table was altered, or the key was changed (after a"
        " rotation, sign once with `casetrack audit checkpoint --after-rotation OLD_KEY`,"
        " docs/integrity.md); nothing signed"
    )


class IntegrityLog:
    """Checkpoints and proofs over one schema's log."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        schema: str,
        events_table: str,
        url: str | None = None,
    ) -> None:
        self.datastore = datastore
        self.url = url  # for worker processes' connections: none, no workers
        self.hashes = EventHashes(schema, events_table)
        self.nodes = MerkleNodes(schema)
        self.checkpoints = Checkpoints(schema)
        self.epochs = LogEpochs(schema)

    def checkpoint(
        self, signer: str, previous_keys: Sequence[str] = ()
    ) -> tuple[StoredCheckpoint, bool]:
        """Sign the tree of every event hashed so far, unless the latest checkpoint already
        has that size: (the checkpoint, whether it is new). The latest checkpoint is trusted
        only as its signed note says, checked with this key (or, once after a rotation, with
        one of `previous_keys`); the tables are not, so nothing in them can get a rewritten
        history signed."""
        vkey = vkey_of(signer)
        origin = parse_vkey(vkey).name
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            rewriting = self.epochs.unfinished(curs)
            if rewriting is not None:
                raise LogBeingRewritten(rewriting.epoch)
            size = self.hashes.size(curs)
            stored = self.checkpoints.latest(curs)
            latest = None if stored is None else _signed(stored, (vkey, *previous_keys), origin)
            if stored is not None and latest is not None and latest.size == size:
                return stored, False
            if latest is not None and latest.size > size:
                raise LogRewritten(
                    f"the log holds {size} events but checkpoint {latest.size} was signed over"
                    f" {latest.size}: events were deleted"
                )
            root = self._extend(curs, size, latest)
            epoch_lines = extension_lines(self.epochs.current(curs))
            note = sign_checkpoint(Checkpoint(origin, size, root, epoch_lines), signer)
            self.checkpoints.add(curs, size, root, note)
            kept = self.checkpoints.at(curs, size)
        assert kept is not None
        return kept, True

    def verify(
        self,
        cases: Sequence[UUID] | None = None,
        checkpoints: Sequence[tuple[int, bytes]] = (),
        progress: Callable[[int], None] | None = None,
        workers: int | None = None,
    ) -> LogReport:
        """Verify the whole log against `checkpoints` (whose signatures the caller checked),
        or only the chains and leaves of `cases`; raises LogTampered with the first finding.
        Both tables are read in one snapshot (EventHashes.reading). A large log is checked
        on `workers` processes (default: one per core; parallel_verify.py); a finding is
        always named by one walk of the log (verify_rows), so it is the same either way."""
        with self.datastore.get_connection() as conn, self.hashes.reading(conn) as reader:
            if cases is None and self.url is not None:
                parts = worker_count(workers, reader.size())
                if parts > 1:
                    report = verify_in_parallel(
                        reader, self.url, self.hashes, parts, checkpoints, progress
                    )
                    if report is not None:
                        return report
            return verify_rows(
                reader.events(cases),
                reader.hashes(cases),
                checkpoints,
                progress,
                whole_log=cases is None,
            )

    def size(self) -> int:
        """How many events are hashed (the tree's size now)."""
        with self.datastore.transaction(commit=False) as curs:
            return self.hashes.size(curs)

    def latest(self) -> StoredCheckpoint | None:
        with self.datastore.transaction(commit=False) as curs:
            return self.checkpoints.latest(curs)

    def all_checkpoints(self) -> list[StoredCheckpoint]:
        with self.datastore.transaction(commit=False) as curs:
            return self.checkpoints.all(curs)

    def retirements(self) -> list[tuple[Epoch, list[StoredCheckpoint]]]:
        """Each finished rewrite of the log, with the checkpoints it retired."""
        with self.datastore.transaction(commit=False) as curs:
            return [
                (epoch, self.checkpoints.retired(curs, epoch.epoch - 1))
                for epoch in self.epochs.all(curs)
                if epoch.finished_at is not None
            ]

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        with self.datastore.transaction(commit=False) as curs:
            return self.checkpoints.at(curs, size)

    def case_events(self, case_id: UUID) -> list[tuple[StoredRow, HashedEvent]]:
        """A case's stored events with their hashes, in version order."""
        with self.datastore.transaction(commit=False) as curs:
            return self.hashes.of_case(curs, case_id)

    def case_log(self, case_id: UUID) -> list[tuple[StoredRow, HashedEvent | None]]:
        """Every stored event of a case with its hashes (None where it has none), in
        version order: one read, so events and hashes agree."""
        with self.datastore.transaction(commit=False) as curs:
            return self.hashes.case_log(curs, case_id)

    def inclusion_proofs(self, leaf_indexes: list[int], size: int) -> list[list[bytes]]:
        """The audit path of each leaf in the tree of `size` leaves (RFC 6962 2.1.1)."""
        with self.datastore.transaction(commit=False) as curs:
            subtree = self._subtree(curs)
            return [merkle.inclusion_path(subtree, size, i) for i in leaf_indexes]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The proof that the tree of `old_size` is a prefix of that of `new_size`."""
        with self.datastore.transaction(commit=False) as curs:
            if new_size > self.hashes.size(curs):
                raise merkle.TreeSizeError(f"the log has fewer than {new_size} events")
            return merkle.consistency_path(self._subtree(curs), new_size, old_size)

    def _extend(self, curs: Cursor[DictRow], size: int, latest: Checkpoint | None) -> bytes:
        """The root at `size`, hashing only the leaves past the kept tiles and keeping the
        tiles and nodes completed on the way. It starts at or before `latest`'s size, so
        the leaves up to it are always checked against its signed root: kept nodes are
        unsigned, and nodes forged past it would otherwise carry a rewrite into the tree."""
        start = min(self.nodes.covered(curs), size - size % _TILE)
        if latest is not None:
            start = min(start, latest.size - latest.size % _TILE)
        keys = merkle.perfect_subtrees(start)
        found = self.nodes.get(curs, keys)
        if len(found) != len(keys):  # a node went missing: rebuild from the first leaf
            start, keys = 0, []
        frontier = merkle.Frontier.of(start, [found[k] for k in keys])
        if latest is not None and latest.size == start:
            self._check(frontier, latest)
        for lo in range(start, size, _READ_CHUNK):
            completed: list[tuple[int, int, bytes]] = []
            for leaf in self.hashes.leaves(curs, lo, min(lo + _READ_CHUNK, size)):
                completed += frontier.append(leaf)
                if latest is not None and frontier.size == latest.size:
                    self._check(frontier, latest)
            self.nodes.add(curs, completed)
        if frontier.size != size:
            raise LogRewritten(f"leaf indexes below {size} are missing: events were deleted")
        return frontier.root()

    @staticmethod
    def _check(frontier: merkle.Frontier, latest: Checkpoint) -> None:
        if frontier.root() != latest.root:
            raise LogRewritten(
                f"the first {latest.size} events no longer yield the root of checkpoint"
                f" {latest.size}: the log was altered; run `casetrack audit verify`"
            )

    def _subtree(self, curs: Cursor[DictRow]) -> Callable[[int, int], bytes]:
        """subtree(lo, hi) from kept nodes where they cover the range, else from leaves."""
        covered = self.nodes.covered(curs)

        def subtree(lo: int, hi: int) -> bytes:
            n = hi - lo
            if n >= _TILE and n & (n - 1) == 0 and hi <= covered:
                height = n.bit_length() - 1
                found = self.nodes.get(curs, [(height, lo >> height)])
                if found:
                    return next(iter(found.values()))
            if n <= _TILE:
                leaves = self.hashes.leaves(curs, lo, hi)
                if len(leaves) != n:
                    raise merkle.TreeSizeError(f"the log has no leaves {lo} to {hi - 1}")
                return merkle.root(leaves)
            k = 1 << ((n - 1).bit_length() - 1)
            return merkle.hash_children(subtree(lo, lo + k), subtree(lo + k, hi))

        return subtree

"""Sealing the personal data of a log written before casetrack encrypted it: the one
sanctioned rewrite of stored events, run by `casetrack db init` (docs/privacy.md).

1. Begin (once): the whole log must verify, leaves, chains and tree, against every
   checkpoint signed so far (a log altered before the rewrite would otherwise be laundered
   by it); a last checkpoint of the old epoch is signed first. Then, in one transaction:
   a log_epochs row opens the new epoch with the old tree's size and root, the old epoch's
   checkpoints are retired, the kept Merkle nodes are dropped. From then on no checkpoint
   is signed and writers re-read their chain links until the epoch closes.
2. Batches, each one transaction under the events' table lock: every personal value still
   in plaintext is sealed with its subject's key (made as the writer would make it; a
   person erased meanwhile reads ERASED instead), the payloads are replaced, the affected
   cases' leaves and chains recomputed in place, and the epoch's progress advanced. An
   interrupted run resumes from the last batch committed.
3. Close: the transition note (domain/integrity/epochs.py), signed with the log's key,
   binds the old epoch's last tree and retired checkpoints to the new epoch; then the new
   epoch's first checkpoint is signed.

Without a signing key the rewrite still runs when no checkpoint was ever signed (no
auditor holds one); with checkpoints, it refuses: their successor must be signed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import psycopg
import structlog

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from adapters.postgres.integrity_log import LogRewritten
from adapters.postgres.stored_payloads import StoredPayloads
from adapters.privacy.field_cipher import associated_data, is_sealed, seal
from domain.integrity.checkpoint import parse_vkey, vkey_of
from domain.integrity.epochs import Transition, retired_digest, sign_transition
from domain.integrity.stored import StoredRow
from domain.integrity.verify import LogTampered
from domain.personal_data import ERASED, personal_paths

log = structlog.get_logger(__name__)

REASON = "personal-data-sealing"
BATCH = 2_000
_CHECKPOINTER_LOCK = 0x43484B50  # integrity_log's: no checkpoint signed while this holds it
_SEALING_LOCK = 0x5345414C  # "SEAL": one rewrite at a time (released with its connection)


_NEEDS_KEY = (
    "sealing the log's personal data rewrites it into a new epoch, whose transition must be"
    " signed with the key that signed its checkpoints: set CASETRACK_SIGNING_KEY to it"
    " (docs/privacy.md)"
)


class SealingRefused(RuntimeError):
    """The rewrite cannot begin: the log does not verify, or its successor epoch could not
    be signed. Nothing was changed; the message says what to do."""


@dataclass
class SealingReport:
    epoch: int | None = None  # the epoch the rewrite opened; None: nothing to seal
    events: int = 0  # payloads rewritten by this run
    resumed: bool = False  # an interrupted rewrite was carried on
    signed: bool = False  # the transition and a first checkpoint of the epoch were signed


def seal_plaintext_log(
    store: CaseStore,
    signer: str | None,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> SealingReport:
    """Seal every personal value the log still holds in plaintext (nothing when there is
    none); `progress` is called with the payloads rewritten after each batch. Two at once
    (two `db init`s) take turns: the second finds nothing left to do."""
    with psycopg.connect(store.url, autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (_SEALING_LOCK,))
        return _seal(store, signer, batch, progress)


def _seal(
    store: CaseStore,
    signer: str | None,
    batch: int,
    progress: Callable[[int], None] | None,
) -> SealingReport:
    payloads = StoredPayloads(store.schema, EVENTS_TABLE)
    epochs = store.integrity.epochs
    with store.datastore.transaction(commit=False) as curs:
        open_epoch = epochs.unfinished(curs)
    if open_epoch is None and not _holds_plaintext(store, payloads):
        return SealingReport()
    if open_epoch is not None and open_epoch.retired and signer is None:
        raise SealingRefused(_NEEDS_KEY)
    report = SealingReport(resumed=open_epoch is not None)
    if open_epoch is None:
        epoch, through = _begin(store, signer), 0
    else:
        epoch, through = open_epoch.epoch, open_epoch.through
    report.epoch = epoch
    while True:
        done = _seal_batch(store, payloads, epoch, through, batch)
        if done is None:
            break
        through, rewritten = done
        report.events += rewritten
        if progress is not None:
            progress(report.events)
    report.signed = _close(store, epoch, signer)
    log.info("log sealed", epoch=epoch, events=report.events, resumed=report.resumed)
    return report


def _holds_plaintext(store: CaseStore, payloads: StoredPayloads) -> bool:
    """Whether an event still holds a personal value in plaintext (an event without tokens
    may hold none: a letter with no subject)."""
    after = 0
    while True:
        with store.datastore.transaction(commit=False) as curs:
            rows = payloads.without_tokens(curs, after, 1_000)
        if not rows:
            return False
        if any(_plaintext_paths(orjson.loads(r.state), r.topic) for r in rows):
            return True
        after = rows[-1].notification_id


def _begin(store: CaseStore, signer: str | None) -> int:
    integrity = store.integrity
    if signer is not None:
        try:
            integrity.checkpoint(signer)  # the old epoch's last tree, checked against its own
        except LogRewritten as error:
            raise SealingRefused(_altered(str(error))) from None
    stored = integrity.all_checkpoints()
    if stored and signer is None:
        raise SealingRefused(_NEEDS_KEY)
    try:
        verified = integrity.verify(None, [(c.size, c.root) for c in stored])
    except LogTampered as tampered:
        raise SealingRefused(_altered(tampered.finding.message)) from None
    assert verified.size is not None and verified.root is not None
    with store.datastore.transaction(commit=True) as curs:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (_CHECKPOINTER_LOCK,))
        retiring = integrity.checkpoints.all(curs)
        if [(c.size, c.root) for c in retiring] != [(c.size, c.root) for c in stored]:
            raise SealingRefused("a checkpoint was signed meanwhile: run `casetrack db init` again")
        previous = integrity.epochs.current(curs)
        integrity.epochs.begin(
            curs,
            previous + 1,
            REASON,
            (verified.size, verified.root),
            (len(retiring), retired_digest([c.note for c in retiring])),
        )
        integrity.checkpoints.retire(curs, previous)
        integrity.nodes.clear(curs)
    log.info("log rewrite begun", epoch=previous + 1, verified_events=verified.size)
    return previous + 1


def _altered(finding: str) -> str:
    return (
        f"the log does not verify ({finding}); sealing it would rewrite an altered history"
        " into a new epoch: investigate with `casetrack audit verify` first"
    )


def _seal_batch(
    store: CaseStore, payloads: StoredPayloads, epoch: int, after: int, batch: int
) -> tuple[int, int] | None:
    """Seal the next `batch` events still in plaintext: (the last notification id looked
    at, how many were rewritten), or None when none is left."""
    with store.datastore.transaction(commit=True) as curs:
        payloads.lock(curs)
        rows = payloads.without_tokens(curs, after, batch)
        if not rows:
            return None
        states = [(row, orjson.loads(row.state)) for row in rows]
        keys = _keys(store, curs, states)
        sealed: list[StoredRow] = []
        for row, state in states:
            if _seal_state(state, row, keys):
                row.state = orjson.dumps(state)
                sealed.append(row)
        payloads.replace(curs, sealed)
        store.integrity.hashes.rehash(curs, sorted({row.case_id for row in sealed}))
        store.integrity.epochs.advance(curs, epoch, rows[-1].notification_id, len(sealed))
    return rows[-1].notification_id, len(sealed)


Keys = dict[tuple[UUID, str], tuple[UUID, bytes] | None]  # None: the subject is erased


def _keys(store: CaseStore, curs: Any, states: list[tuple[StoredRow, dict[str, Any]]]) -> Keys:
    """The (subject id, key) of every (case, role) whose plaintext these events hold, made
    as the writer makes them (with the person's blind index, when the event names it)."""
    wanted: dict[tuple[UUID, str], bytes | None] = {}
    for row, state in states:
        for owner, holder, _field in _plaintext_paths(state, row.topic):
            held = state.get(holder) if holder else None
            identity = held.get("uci") or held.get("email") if isinstance(held, dict) else None
            person = (
                store.vault.blind_index.person(str(identity))
                if identity and identity != ERASED
                else None
            )
            if wanted.get((row.case_id, owner)) is None:
                wanted[(row.case_id, owner)] = person
    found = store.data_keys.subjects_for(
        curs, [(case, owner, person) for (case, owner), person in wanted.items()]
    )
    return {
        place: None if (s := found.get(place)) is None or s.key is None else (s.subject_id, s.key)
        for place in wanted
    }


def _seal_state(state: dict[str, Any], row: StoredRow, keys: Keys) -> bool:
    """Seal `state`'s plaintext values in place (ERASED for a subject erased meanwhile);
    whether there were any."""
    paths = _plaintext_paths(state, row.topic)
    for owner, holder, field in paths:
        target = state[holder] if holder else state
        key = keys[(row.case_id, owner)]
        target[field] = (
            ERASED
            if key is None
            else seal(
                key[1],
                key[0],
                str(target[field]),
                associated_data(row.case_id, row.case_version, f"{holder}.{field}"),
            )
        )
    return bool(paths)


def _plaintext_paths(state: dict[str, Any], topic: str) -> list[tuple[str, str, str]]:
    paths: list[tuple[str, str, str]] = []
    for owner, holder, field in personal_paths(state, topic):
        value = (state[holder] if holder else state)[field]
        if not is_sealed(value) and value != ERASED:
            paths.append((owner, holder, field))
    return paths


def _close(store: CaseStore, epoch: int, signer: str | None) -> bool:
    """Close the epoch with its signed transition, then sign its first checkpoint."""
    integrity = store.integrity
    with store.datastore.transaction(commit=True) as curs:
        opened = next(e for e in integrity.epochs.all(curs) if e.epoch == epoch)
        note = None
        if signer is not None:
            transition = Transition(
                parse_vkey(vkey_of(signer)).name,
                epoch,
                opened.previous_size,
                opened.previous_root,
                opened.retired,
                opened.retired_sha256,
                REASON,
            )
            note = sign_transition(transition, signer)
        integrity.epochs.finish(curs, epoch, note)
    if signer is None:
        return False
    integrity.checkpoint(signer)
    return True

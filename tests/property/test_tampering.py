"""domain.integrity.verify: a random log verifies; one random tampering with it is always
detected, and named (kind, place, fields) as the verifier's docstring promises.

Each tampering is what someone with SQL access can do to the two tables (events and
event_hashes): change a byte of a column, delete or insert rows, swap or move events, cut the
tail, or rewrite the whole history with every hash recomputed. Each builder below returns the
tampered log and the finding it must produce; where a tampering leaves every row consistent,
the first spot is the earliest of the later checks (a case's next event, a kept checkpoint),
and the builder works that out from the log.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from uuid import UUID

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.integrity import checkpoint as notes
from domain.integrity import merkle
from domain.integrity.leaves import LeafEncodingError, leaf_and_digests
from domain.integrity.stored import HashedEvent, StoredRow, column_leaf, leaf_record
from domain.integrity.verify import (
    FindingKind,
    LogTampered,
    check_rows,
    check_structure,
    stretch_starts,
    stretches,
    verify_log,
    verify_rows,
)
from tests.integrity_logs import Log, build_log, forged, payload

K = FindingKind


@dataclass(frozen=True)
class Expect:
    """The finding a tampering must produce: its kind, and where known its leaf index and
    fields (`fields` must equal the finding's; `field` must be among them)."""

    kind: FindingKind
    leaf_index: int | None = None
    fields: tuple[str, ...] | None = None
    field: str | None = None


Tampering = Callable[[Log, random.Random, st.DataObject], tuple[Log, Expect | None]]
"""Tampers with a log in place; returns it and the finding it must produce (None: an append
with correct hashes, which is no tampering)."""

# ---------------------------------------------------------------- logs


@st.composite
def logs(draw: st.DrawFn, min_events: int = 1) -> tuple[Log, random.Random]:
    rng = draw(st.randoms(use_true_random=False))
    versions = draw(st.lists(st.integers(1, 6), min_size=1, max_size=8))
    if sum(versions) < min_events:
        versions = [*versions, min_events]
    n = sum(versions)
    sizes = draw(st.lists(st.integers(0, n), max_size=3))
    return build_log(rng, versions, checkpoint_sizes=sizes), rng


def verifies(log: Log) -> None:
    verify_log(log.events, log.hashes, log.checkpoints)


def finding(log: Log) -> LogTampered:
    with pytest.raises(LogTampered) as raised:
        verifies(log)
    return raised.value


def flip(value: bytes, bit: int) -> bytes:
    i = (bit // 8) % len(value)
    return value[:i] + bytes([value[i] ^ (1 << bit % 8)]) + value[i + 1 :]


def flip_int(value: int, bit: int) -> int:
    """`value` as a bigint with one bit flipped (bit 63 makes it negative)."""
    raw = (value ^ (1 << bit % 64)) & (1 << 64) - 1
    return raw - (1 << 64) if raw >= 1 << 63 else raw


def position(data: st.DataObject, log: Log, label: str = "position") -> int:
    return data.draw(st.integers(0, len(log.events) - 1), label=label)


def first_checkpoint_after(log: Log, position: int) -> int:
    """Where a rewrite at `position` is caught: after the leaf of the first checkpoint whose
    size covers it (the full-size checkpoint always does)."""
    return min(size for size, _ in log.checkpoints if size > position) - 1


# ---------------------------------------------------------------- tamperings


def change_event_column(log: Log, rng: random.Random, data: st.DataObject) -> tuple[Log, Expect]:
    """UPDATE one byte of one column of one events row."""
    p = position(data, log)
    row = log.events[p]
    column = data.draw(st.sampled_from(["case id", "case version", "topic", "state"]))
    bit = data.draw(st.integers(0, 8 * len(row.state) - 1), label="bit")
    if column == "case id":
        changed = replace(row, case_id=UUID(bytes=flip(row.case_id.bytes, bit)))
        expect = Expect(K.MOVED_EVENT, p, ("case id",))
    elif column == "case version":
        changed = replace(row, case_version=flip_int(row.case_version, bit))
        expect = Expect(K.CHANGED_FIELD, p, ("case version",))
    elif column == "topic":
        i = bit % len(row.topic)
        topic = row.topic[:i] + chr(ord(row.topic[i]) ^ 1 << bit % 7) + row.topic[i + 1 :]
        changed = replace(row, topic=topic)
        expect = Expect(K.CHANGED_FIELD, p, ("event type",))
    else:
        changed = replace(row, state=flip(row.state, bit))
        expect = Expect(K.CHANGED_FIELD, p, field="payload")
    log.events[p] = changed
    return log, expect


HASH_COLUMNS = ("leaf_index", "notification_id", "case_id", "case_version", "leaf", "chain")


def change_hash_column(log: Log, rng: random.Random, data: st.DataObject) -> tuple[Log, Expect]:
    """UPDATE one byte of one column of one event_hashes row."""
    p = position(data, log)
    row = log.hashes[p]
    column = data.draw(st.sampled_from([*HASH_COLUMNS, "fields"]))
    bit = data.draw(st.integers(0, 255), label="bit")
    n = len(log.hashes)
    if column == "leaf_index":
        # A new index outside the log (inside, it would collide with the primary key).
        index = flip_int(p, data.draw(st.integers(max(n, 1).bit_length(), 63), label="index bit"))
        log.hashes[p] = replace(row, leaf_index=index)
        log.hashes.sort(key=lambda h: h.leaf_index)
        if index < 0:
            return log, Expect(K.LEAF_INDEX_GAP, 0)
        if p == n - 1:
            return log, Expect(K.LEAF_INDEX_GAP, p)
        return log, Expect(K.MISSING_HASH, p)
    if column in ("notification_id", "case_version"):
        changed = replace(row, **{column: flip_int(getattr(row, column), bit)})
    elif column == "case_id":
        changed = replace(row, case_id=UUID(bytes=flip(row.case_id.bytes, bit)))
    else:
        changed = replace(row, **{column: flip(getattr(row, column), bit)})
    log.hashes[p] = changed
    if column == "chain":
        return log, Expect(K.BROKEN_LINK, p, ("chain",))
    return log, Expect(K.CHANGED_HASH, p, (column,))


def delete_rows(log: Log, rng: random.Random, data: st.DataObject) -> tuple[Log, Expect]:
    """DELETE the events row, the event_hashes row, or both, of one event."""
    p = position(data, log)
    which = data.draw(st.sampled_from(["event", "hash", "both"]))
    last = p == len(log.events) - 1
    if which in ("event", "both"):
        del log.events[p]
    if which in ("hash", "both"):
        del log.hashes[p]
    if which == "event":
        return log, Expect(K.MISSING_EVENT, p)
    if which == "hash":
        return log, Expect(K.MISSING_HASH, p)
    return log, Expect(K.TRUNCATED if last else K.LEAF_INDEX_GAP, p)


def insert_event(log: Log, rng: random.Random, data: st.DataObject) -> tuple[Log, Expect | None]:
    """INSERT a forged event: at the end without hashes, or in the middle with hash rows
    made by the writer's own code (its leaf and its case's chain correct, later leaf
    indexes moved up)."""
    p = data.draw(st.integers(0, len(log.events)), label="insert at")
    at_end = p == len(log.events)
    existing = data.draw(st.booleans(), label="existing case")
    before = log.events[:p]
    if existing and before:
        case = data.draw(st.sampled_from([e.case_id for e in before]), label="case")
        version = max(e.case_version for e in before if e.case_id == case) + 1
    else:
        case, version = UUID(int=1 << 127 | rng.getrandbits(96) << 32, version=4), 1
    nid = (log.events[p - 1].notification_id if p else 0) + 1
    row = StoredRow(nid, case, version, "domain.case:Case.Forged", payload(rng, version))
    log.events.insert(p, row)
    if at_end and data.draw(st.booleans(), label="without hashes"):
        return log, Expect(K.MISSING_HASH, p)
    # Hash rows as the writer makes them; the ones before p are unchanged.
    old = log.hashes
    log.rehash()
    assert log.hashes[:p] == old[:p]
    if at_end:  # an append: nothing to catch (see test_an_append_is_not_a_tampering...)
        return log, None
    # The forged row checks out; its case's next event repeats its version, unless a
    # checkpoint covering p comes first.
    nxt = next((q for q in range(p + 1, len(log.events)) if log.events[q].case_id == case), None)
    caught = first_checkpoint_after(log, p)
    if nxt is not None and nxt <= caught:
        # The rehash renumbered that case's versions' links but kept their versions.
        return log, Expect(K.VERSION_ORDER, nxt)
    return log, Expect(K.CHECKPOINT_MISMATCH, caught)


def swap_versions(log: Log, rng: random.Random, data: st.DataObject) -> tuple[Log, Expect | None]:
    """UPDATE the versions of two events of a case, swapping them; then, maybe, their hash
    rows recomputed to match (leaf, digests, identity; the chain links kept)."""
    cases = {e.case_id for e in log.events}
    multi = [c for c in sorted(cases) if sum(e.case_id == c for e in log.events) >= 2]
    if not multi:
        return change_event_column(log, rng, data)
    case = data.draw(st.sampled_from(multi), label="case")
    mine = [q for q, e in enumerate(log.events) if e.case_id == case]
    i, j = sorted(data.draw(st.lists(st.sampled_from(mine), min_size=2, max_size=2, unique=True)))
    a, b = log.events[i], log.events[j]
    log.events[i] = replace(a, case_version=b.case_version)
    log.events[j] = replace(b, case_version=a.case_version)
    if data.draw(st.booleans(), label="hashes follow"):
        for q in (i, j):
            log.hashes[q] = _rehashed_row(log, q)
    return log, Expect(K.VERSION_ORDER, i)


def move_event(log: Log, rng: random.Random, data: st.DataObject) -> tuple[Log, Expect]:
    """Move an event to another case: its case id alone changed; or also its version (the
    other case's next), with its hash row recomputed (chain kept, or recomputed too)."""
    p = position(data, log)
    row = log.events[p]
    others = sorted({e.case_id for e in log.events} - {row.case_id})
    target = data.draw(st.sampled_from(others), label="to") if others else UUID(int=7)
    how = data.draw(st.sampled_from(["case id", "rehashed", "rechained"]))
    if how == "case id":
        log.events[p] = replace(row, case_id=target)
        return log, Expect(K.MOVED_EVENT, p, ("case id",))
    version = 1 + max((e.case_version for e in log.events[:p] if e.case_id == target), default=0)
    log.events[p] = replace(row, case_id=target, case_version=version)
    if how == "rehashed":
        log.hashes[p] = _rehashed_row(log, p)
        return log, Expect(K.BROKEN_LINK, p, ("chain",))
    log.rehash()
    # Every row checks out now; what is left: the source case skips a version (at its next
    # event), the target case repeats one (at its next event), the checkpoints. At one spot
    # the event's own checks come before the checkpoint that ends with its leaf.
    spots = [(first_checkpoint_after(log, p), 1, K.CHECKPOINT_MISMATCH)]
    for case, kind in ((row.case_id, K.VERSION_GAP), (target, K.VERSION_ORDER)):
        later = [q for q in range(p + 1, len(log.events)) if log.events[q].case_id == case]
        if later:
            spots.append((later[0], 0, kind))
    spot, _, kind = min(spots)
    return log, Expect(kind, spot)


def truncate(log: Log, rng: random.Random, data: st.DataObject) -> tuple[Log, Expect]:
    """DELETE the last events and their hash rows."""
    n = len(log.events)
    keep = data.draw(st.integers(0, n - 1), label="keep")
    del log.events[keep:]
    del log.hashes[keep:]
    return log, Expect(K.TRUNCATED, keep)


def rewrite_history(log: Log, rng: random.Random, data: st.DataObject) -> tuple[Log, Expect]:
    """Edit an event and recompute every leaf, link and index after it, as the writer would:
    every row is consistent, and only a checkpoint kept from before tells."""
    p = position(data, log)
    log.events[p] = forged(log.events[p], rng)
    log.rehash()
    return log, Expect(K.CHECKPOINT_MISMATCH, first_checkpoint_after(log, p))


def _rehashed_row(log: Log, p: int) -> HashedEvent:
    """The hash row of event p recomputed for what it says now (leaf, digests, identity),
    with its stored chain link kept."""
    row = log.events[p]
    leaf, fields = leaf_and_digests(leaf_record(row))
    return replace(
        log.hashes[p], case_id=row.case_id, case_version=row.case_version, leaf=leaf, fields=fields
    )


TAMPERINGS: list[Tampering] = [
    change_event_column,
    change_hash_column,
    delete_rows,
    insert_event,
    swap_versions,
    move_event,
    truncate,
    rewrite_history,
]

# ---------------------------------------------------------------- properties


@given(logs())
def test_an_untouched_log_verifies(drawn: tuple[Log, random.Random]) -> None:
    log, _ = drawn
    report = verify_log(log.events, log.hashes, log.checkpoints)
    assert report.events == report.size == len(log.events)
    assert report.cases == len({e.case_id for e in log.events})
    assert report.root == merkle.root([h.leaf for h in log.hashes])
    assert report.checkpoints_matched == tuple(size for size, _ in sorted(log.checkpoints))


@settings(max_examples=300)
@given(logs(min_events=2), st.sampled_from(TAMPERINGS), st.data())
def test_one_tampering_is_detected_and_named(
    drawn: tuple[Log, random.Random], tamper: Tampering, data: st.DataObject
) -> None:
    log, rng = drawn
    tampered, expect = tamper(log.copy(), rng, data)
    if expect is None:
        verifies(tampered)
        return
    event(f"{tamper.__name__}: {expect.kind}")
    found = finding(tampered).finding
    assert found.kind == expect.kind, found.message
    if expect.leaf_index is not None:
        assert found.leaf_index == expect.leaf_index, found.message
    if expect.fields is not None:
        assert found.fields == expect.fields, found.message
    if expect.field is not None:
        assert expect.field in found.fields, found.message
    if found.case_id is not None:
        assert str(found.case_id) in found.message
    assert f"version {found.case_version}" in found.message or found.case_version is None


@given(logs(), st.data())
def test_an_append_is_not_a_tampering_but_no_checkpoint_covers_it(
    drawn: tuple[Log, random.Random], data: st.DataObject
) -> None:
    """An event appended with correct hashes is what the writer does; the verifier passes
    it, and the report shows that the last checkpoint stops short of it."""
    log, rng = drawn
    last = log.events[-1]
    log.events.append(
        forged(
            last, rng, notification_id=last.notification_id + 1, case_version=last.case_version + 1
        )
    )
    log.rehash()
    report = verify_log(log.events, log.hashes, log.checkpoints)
    assert report.size == len(log.events) == max(report.checkpoints_matched) + 1


@given(logs(), st.data())
def test_a_history_rewritten_and_signed_by_another_key_is_refused(
    drawn: tuple[Log, random.Random], data: st.DataObject
) -> None:
    """The attacker who rewrites history can sign a checkpoint of it, but not with the log's
    key: the auditor's check of the note fails, and without the note the rewrite passes."""
    log, rng = drawn
    skey, vkey = notes.generate_key("casetrack.example/log")
    attacker_skey, _ = notes.generate_key("casetrack.example/log")
    kept = notes.sign_checkpoint(
        notes.Checkpoint("casetrack.example/log", len(log.events), log.checkpoints[-1][1]), skey
    )
    assert notes.verify_checkpoint(kept, vkey).root == log.checkpoints[-1][1]

    p = position(data, log)
    log.events[p] = forged(log.events[p], rng)
    log.rehash()
    root = merkle.root([h.leaf for h in log.hashes])
    forged_note = notes.sign_checkpoint(
        notes.Checkpoint("casetrack.example/log", len(log.events), root), attacker_skey
    )
    with pytest.raises(notes.WrongKey):
        notes.verify_checkpoint(forged_note, vkey)
    altered = kept.replace(kept.split("\n")[2], base64.b64encode(root).decode(), 1)
    with pytest.raises(notes.BadSignature):
        notes.verify_checkpoint(altered, vkey)
    verify_log(log.events, log.hashes, [(len(log.events), root)])  # the forged head matches
    with pytest.raises(LogTampered) as raised:  # the kept one does not
        verify_log(log.events, log.hashes, [(len(log.events), log.checkpoints[-1][1])])
    assert raised.value.finding.kind == K.CHECKPOINT_MISMATCH


@settings(max_examples=300)
@given(logs(min_events=2), st.sampled_from(TAMPERINGS), st.data(), st.integers(1, 5))
def test_stretches_and_structure_together_agree_with_the_walk(
    drawn: tuple[Log, random.Random], tamper: Tampering, data: st.DataObject, parts: int
) -> None:
    """What the parallel verifier runs (check_rows on each stretch, in worker processes,
    and check_structure over the hash rows) passes exactly when verify_rows passes, with
    the same report: a tampering cannot slip between the stretches."""
    log, rng = drawn
    how = data.draw(st.sampled_from(["untouched", "tampered", "at a cut"]), label="how")
    if how == "tampered":
        log, _ = tamper(log.copy(), rng, data)
    elif how == "at a cut":  # a row on either side of where the stretches meet, or the last
        at = data.draw(st.sampled_from([*stretch_starts(len(log.events), parts), 0]), label="at")
        p = data.draw(st.sampled_from([at - 1, at]), label="row")
        table = data.draw(st.sampled_from([log.events, log.hashes]), label="table")
        del table[p]
    events = [(e.notification_id, e.case_id.bytes, e.case_version, e.topic, e.state)
              for e in log.events]  # fmt: skip
    hashes = [(h.leaf_index, h.notification_id, h.case_id.bytes, h.case_version, h.leaf,
               h.chain, h.fields) for h in log.hashes]  # fmt: skip
    try:
        walked = verify_rows(events, hashes, log.checkpoints)
    except LogTampered:
        walked = None
    size = max((h[0] for h in hashes), default=-1) + 1
    cut = stretches(size, parts, {h[0]: h[1] for h in hashes})
    event("cut" if cut is not None else "not cut: the walk alone")
    if cut is None:
        return
    rows_hold = all(
        check_rows(
            [e for e in events if _within(e[0], s.notification_ids)],
            [h for h in hashes if _within(h[0], s.leaf_indexes)],
            s.first_index,
        )
        is None
        for s in cut
    )
    structure = check_structure(hashes, log.checkpoints)
    assert (structure if rows_hold else None) == walked


def _within(value: int, bounds: tuple[int | None, int | None]) -> bool:
    low, high = bounds
    return (low is None or value >= low) and (high is None or value < high)


HEX = "0123456789abcdef0123456789ABCDEF"
ODD_TEXTS = st.sampled_from(
    [
        HEX,
        HEX.lower(),
        "{" + HEX[:30] + "}",
        "urn:uuid:" + HEX,
        "12345678-1234-5678-1234-567812345678",
        "0x" + HEX[:30],
        HEX[:16] + "_" + HEX[:15],
        " " + HEX[:31],
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00+05:30",
        "2026-01-01T00:00:00.123456Z",
        "0001-01-01T00:00:00+01:00",
        "2026-13-01T00:00:00+00:00",
        "",
    ]
)
TYPED = st.fixed_dictionaries(
    {
        "_type_": st.sampled_from(["uuid_hex", "datetime_iso", "date_iso", "other"]),
        "_data_": st.one_of(ODD_TEXTS, st.text(max_size=40), st.integers(), st.none()),
    }
)
VALUES = st.one_of(
    TYPED, ODD_TEXTS, st.text(max_size=20), st.integers(), st.booleans(), st.none(), st.floats()
)
KEYS = st.sampled_from(["timestamp", "event_id", "source", "occurred_at", "class_version", "x"])
PAYLOADS = st.one_of(
    st.dictionaries(KEYS, VALUES).map(lambda d: json.dumps(d).encode()),
    st.lists(VALUES, max_size=3).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


@given(logs(), st.lists(PAYLOADS, max_size=5), st.integers(0, (1 << 64) - 1))
def test_the_verifier_reads_leaves_as_the_writer_writes_them(
    drawn: tuple[Log, random.Random], states: list[bytes], version: int
) -> None:
    """column_leaf (the verifier's) equals leaf_and_digests(leaf_record(row)) (the writer's)
    for stored rows, and for payloads that are not eventsourcing's JSON at all."""
    log, _ = drawn
    rows = list(log.events)
    rows += [replace(rows[0], state=state, case_version=version) for state in states]
    for row in rows:
        assert column_leaf(
            row.case_id.bytes, row.case_version, row.topic, row.state
        ) == leaf_and_digests(leaf_record(row))


@pytest.mark.parametrize("version", [-1, 1 << 64])
def test_a_version_with_no_encoding_is_refused_by_both(version: int) -> None:
    row = build_log(random.Random(1), [1]).events[0]
    with pytest.raises(LeafEncodingError):
        column_leaf(row.case_id.bytes, version, row.topic, row.state)
    with pytest.raises(LeafEncodingError):
        leaf_and_digests(leaf_record(replace(row, case_version=version)))

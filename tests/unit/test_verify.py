"""domain.integrity.verify: each kind of finding, on a small fixed log, and the words that
name its spot (case, version, leaf index, field or link)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from domain.integrity import merkle
from domain.integrity.merkle import ProofError
from domain.integrity.stored import StoredRow, column_leaf
from domain.integrity.verify import Finding, FindingKind, LogTampered, verify_log
from tests.integrity_logs import Log, build_log, forged

K = FindingKind


@pytest.fixture
def log() -> Log:
    """Two cases, a of 3 events and b of 2, interleaved as a1 b1 a2 b2 a3 (leaf index 0-4),
    notification ids 10, 20, ... 50; checkpoints kept at sizes 2 and 5."""
    built = build_log(random.Random(11), [3, 2], checkpoint_sizes=[2])
    order = sorted(
        built.events, key=lambda e: (e.case_version, e.case_id != built.events[0].case_id)
    )
    events = [replace(e, notification_id=10 * (i + 1)) for i, e in enumerate(order)]
    fixed = Log(events, [], [])
    fixed.rehash()
    fixed.checkpoint(2)
    fixed.checkpoint(5)
    return fixed


def where(row: StoredRow, index: int) -> str:
    return (
        f"case {row.case_id} version {row.case_version} (leaf index {index}, notification id"
        f" {row.notification_id})"
    )


def finding(log: Log, **kwargs: object) -> Finding:
    with pytest.raises(LogTampered) as raised:
        verify_log(log.events, log.hashes, log.checkpoints, **kwargs)  # type: ignore[arg-type]
    assert str(raised.value) == raised.value.finding.message
    return raised.value.finding


def test_the_fixture_verifies_and_reports_the_tree_head(log: Log) -> None:
    seen: list[int] = []
    report = verify_log(log.events, log.hashes, log.checkpoints, seen.append)
    assert (report.events, report.cases, report.size) == (5, 2, 5)
    assert report.root == merkle.root([h.leaf for h in log.hashes])
    assert report.checkpoints_matched == (2, 5)
    assert seen == [5]
    assert [e.case_version for e in log.events] == [1, 1, 2, 2, 3]


def test_log_tampered_is_a_proof_error() -> None:
    assert issubclass(LogTampered, ProofError) and issubclass(LogTampered, ValueError)


def test_an_edited_payload_names_the_event_and_its_changed_fields(log: Log) -> None:
    a2 = log.events[2]
    log.events[2] = replace(a2, state=a2.state.replace(b'"source":"', b'"source":"x', 1))
    found = finding(log)
    assert found.kind == K.CHANGED_FIELD
    assert found.fields == ("source", "payload")
    assert (found.leaf_index, found.case_id, found.case_version) == (2, a2.case_id, 2)
    assert found.message == f"the event of {where(a2, 2)} was altered: changed source, payload"


def test_an_edited_topic_is_a_changed_event_type(log: Log) -> None:
    log.events[1] = replace(log.events[1], topic="domain.case:Case.Withdrawn")
    found = finding(log)
    assert (found.kind, found.fields) == (K.CHANGED_FIELD, ("event type",))
    assert "changed event type" in found.message


def test_an_edited_version_says_what_it_was_hashed_as(log: Log) -> None:
    b2 = log.events[3]
    log.events[3] = replace(b2, case_version=7)
    found = finding(log)
    assert (found.kind, found.fields, found.case_version) == (K.CHANGED_FIELD, ("case version",), 2)
    assert found.message == (
        f"the event of {where(b2, 3)} was altered (stored now as case {b2.case_id} version 7):"
        " changed case version"
    )


def test_a_negative_version_is_a_changed_version(log: Log) -> None:
    log.events[3] = replace(log.events[3], case_version=-2)
    assert finding(log).fields == ("case version",)


def test_swapped_versions_are_named_a_swap(log: Log) -> None:
    a2, a3 = log.events[2], log.events[4]
    log.events[2], log.events[4] = replace(a2, case_version=3), replace(a3, case_version=2)
    found = finding(log)
    assert (found.kind, found.leaf_index, found.case_version) == (K.VERSION_ORDER, 2, 2)
    assert found.message == (
        f"case {a2.case_id}: versions 2 and 3 were swapped (the event hashed as version 2,"
        " leaf index 2, notification id 30, is stored as version 3, and the event at"
        " notification id 50 as version 2)"
    )


def test_a_case_id_changed_alone_is_a_moved_event(log: Log) -> None:
    a2, b = log.events[2], log.events[1].case_id
    log.events[2] = replace(a2, case_id=b)
    found = finding(log)
    assert (found.kind, found.case_id, found.fields) == (K.MOVED_EVENT, a2.case_id, ("case id",))
    assert found.message == (
        f"the event hashed as case {a2.case_id} version 2 (leaf index 2, notification id 30)"
        f" now belongs to case {b} as version 2: it was moved to another case"
    )


def test_a_deleted_event_leaves_its_hash_row_without_event(log: Log) -> None:
    b1 = log.events.pop(1)
    found = finding(log)
    assert (found.kind, found.leaf_index, found.case_id) == (K.MISSING_EVENT, 1, b1.case_id)
    assert found.message == (
        f"the event of {where(b1, 1)} is not in the events table: it was deleted"
    )


def test_a_deleted_last_event_is_missing_at_the_end(log: Log) -> None:
    a3 = log.events.pop()
    found = finding(log)
    assert (found.kind, found.leaf_index) == (K.MISSING_EVENT, 4)
    assert found.message == (
        f"the event of {where(a3, 4)} is not in the events table: it was deleted (the events"
        " table ends before its hashes)"
    )


def test_a_deleted_hash_row_leaves_its_event_unhashed(log: Log) -> None:
    del log.hashes[1]
    b1 = log.events[1]
    found = finding(log)
    assert (found.kind, found.leaf_index, found.case_version) == (K.MISSING_HASH, 1, 1)
    assert found.message == (
        f"case {b1.case_id} version 1 (notification id 20) has no event_hashes row (leaf index"
        " 1 expected): its hash row was deleted, or the event was added behind casetrack's back"
    )


def test_an_unfinished_backfill_shows_as_an_unhashed_tail(log: Log) -> None:
    del log.hashes[3:]
    found = finding(log)
    assert (found.kind, found.leaf_index) == (K.MISSING_HASH, 3)
    assert "interrupted `casetrack db init` backfill" in found.message


def test_both_rows_deleted_is_a_gap_in_the_leaf_indexes(log: Log) -> None:
    del log.events[1], log.hashes[1]
    a2 = log.events[1]
    found = finding(log)
    assert (found.kind, found.leaf_index, found.fields) == (K.LEAF_INDEX_GAP, 1, ("leaf_index",))
    assert found.message == (
        f"leaf index 1 is missing: the next hash row is at leaf index 2 (case {a2.case_id}"
        " version 2 (notification id 30)), so the event at leaf index 1 and its hash row were"
        " deleted"
    )


def test_an_altered_leaf_index(log: Log) -> None:
    log.hashes[0] = replace(log.hashes[0], leaf_index=-3)
    found = finding(log)
    assert (found.kind, found.leaf_index) == (K.LEAF_INDEX_GAP, 0)
    assert "leaf index -3 (case" in found.message
    assert "appears where leaf index 0 was expected" in found.message


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("fields", bytes(36), "its field digests"),
        ("case_version", 9, "its case version"),
    ],
)
def test_an_altered_hash_row_column_is_named(
    log: Log, column: str, value: object, words: str
) -> None:
    log.hashes[3] = replace(log.hashes[3], **{column: value})
    found = finding(log)
    assert (found.kind, found.leaf_index, found.fields) == (K.CHANGED_HASH, 3, (column,))
    row = log.hashes[3]
    stored = replace(log.events[3], case_version=row.case_version)
    assert found.message == (
        f"the event_hashes row of {where(stored, 3)} was altered: {words} no longer matches"
        " the event, which is intact"
    )


def test_a_leaf_that_no_field_explains_is_not_blamed_on_either_side(log: Log) -> None:
    """The field checksums are unkeyed: a rewritten leaf and an event altered with checksums
    rewritten to match look alike, and the finding says so rather than guess."""
    rewritten_leaf = replace(log.hashes[3], leaf=bytes(32))
    forged = replace(log.events[3], state=log.events[3].state.replace(b"}", b" }", 1))
    forged_fields = column_leaf(forged.case_id.bytes, forged.case_version, forged.topic,
                                forged.state)[1]  # fmt: skip
    for events, hashes in (
        (log.events, [*log.hashes[:3], rewritten_leaf, *log.hashes[4:]]),
        (
            [*log.events[:3], forged, *log.events[4:]],
            [*log.hashes[:3], replace(log.hashes[3], fields=forged_fields), *log.hashes[4:]],
        ),
    ):
        found = finding(Log(events, hashes))
        assert (found.kind, found.leaf_index, found.fields) == (K.CHANGED_HASH, 3, ("leaf",))
        assert found.message == (
            f"the event of {where(log.events[3], 3)} no longer matches its leaf, and its field"
            " checksums name no field: either the leaf was rewritten, or the event was altered"
            " and its checksums rewritten to match (a checkpoint covering it tells which)"
        )


def test_an_altered_notification_id_in_a_hash_row(log: Log) -> None:
    log.hashes[2] = replace(log.hashes[2], notification_id=31)
    found = finding(log)
    assert (found.kind, found.fields) == (K.CHANGED_HASH, ("notification_id",))
    assert (
        "names notification id 31, but the event it hashes is stored at notification id 30"
        in found.message
    )
    assert "one of the two ids was altered" in found.message


def test_a_rewritten_link_is_named(log: Log) -> None:
    log.hashes[3] = replace(log.hashes[3], chain=bytes(32))
    b2 = log.events[3]
    found = finding(log)
    assert (found.kind, found.fields, found.case_version) == (K.BROKEN_LINK, ("chain",), 2)
    assert found.message == (
        f"the chain link of {where(b2, 3)} does not follow from link 1 and this event's leaf:"
        " the link was rewritten, or an event of this case was added or removed with its"
        " hashes recomputed"
    )


def test_an_event_removed_with_every_hash_recomputed_is_a_version_gap(log: Log) -> None:
    del log.events[2]  # a2
    log.rehash()
    a3 = log.events[3]
    found = finding(log)
    assert (found.kind, found.leaf_index, found.case_version) == (K.VERSION_GAP, 3, 3)
    assert found.message == (
        f"{where(a3, 3)} follows version 1: version 2 is missing from the log (deleted, or"
        " moved to another case)"
    )


def test_events_reordered_with_their_hashes_are_out_of_order(log: Log) -> None:
    log.events[2], log.events[4] = (
        replace(log.events[4], notification_id=30),
        replace(log.events[2], notification_id=50),
    )
    log.rehash()
    found = finding(log)
    assert (found.kind, found.leaf_index, found.case_version) == (K.VERSION_ORDER, 2, 3)
    assert found.message.endswith(
        "comes before version 2 (notification id 50): the case's events were reordered"
    )


def test_a_repeated_version_is_out_of_order(log: Log) -> None:
    log.events[4] = replace(log.events[4], case_version=2)
    log.rehash()
    found = finding(log)
    assert found.kind == K.VERSION_ORDER
    assert "follows version 2 of its case: versions out of order or repeated" in found.message


def test_a_case_that_does_not_start_at_version_1(log: Log) -> None:
    del log.events[1]  # b1
    log.rehash()
    log.checkpoints.clear()  # the one at size 2 would tell first
    found = finding(log)
    assert found.kind == K.VERSION_GAP
    assert "follows the case's start: version 1 is missing" in found.message


def test_history_rewritten_is_caught_by_the_checkpoint_after_it(log: Log) -> None:
    log.events[3] = forged(log.events[3], random.Random(1))
    log.rehash()
    found = finding(log)
    assert (found.kind, found.leaf_index) == (K.CHECKPOINT_MISMATCH, 4)
    assert found.message == (
        "the first 5 events do not have the root of the checkpoint at size 5: events between"
        " leaf indexes 2 and 4 were rewritten with their hashes recomputed"
    )


def test_a_truncated_log_is_named_by_the_checkpoint_beyond_it(log: Log) -> None:
    del log.events[3:], log.hashes[3:]
    found = finding(log)
    assert (found.kind, found.leaf_index) == (K.TRUNCATED, 3)
    assert found.message == (
        "a checkpoint covers 5 events but the log holds 3: the last 2 were removed (the log"
        " was truncated)"
    )


def test_the_empty_log_and_its_checkpoint() -> None:
    report = verify_log([], [], [(0, merkle.EMPTY_ROOT)])
    assert (report.events, report.size, report.root) == (0, 0, merkle.EMPTY_ROOT)
    assert report.checkpoints_matched == (0,)
    with pytest.raises(LogTampered):
        verify_log([], [], [(0, bytes(32))])


def test_some_cases_alone_are_checked_without_the_tree(log: Log) -> None:
    a = log.events[0].case_id
    events = [e for e in log.events if e.case_id == a]
    hashes = [h for h in log.hashes if h.case_id == a]
    report = verify_log(events, hashes, whole_log=False)
    assert (report.events, report.cases, report.size, report.root) == (3, 1, None, None)
    with pytest.raises(ValueError, match="checkpoints cover the whole log"):
        verify_log(events, hashes, log.checkpoints, whole_log=False)
    del hashes[1]
    found = finding(Log(events, hashes), whole_log=False)
    assert (found.kind, found.leaf_index, found.case_version) == (K.MISSING_HASH, None, 2)

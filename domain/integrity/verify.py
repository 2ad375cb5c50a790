"""Verification of the whole log: every stored event against its leaf, every case's chain,
the Merkle tree against kept checkpoints; the first bad spot named.

The verifier walks two streams in lockstep: the events table's rows in notification id order
and the event_hashes rows in leaf index order (the k-th of each describe the same event). Its
memory is constant but for one entry per case (its last version and chain link) and the Merkle
frontier (log2 of the size). It stops at the first finding, in log order, and raises
LogTampered with it; at one spot the checks run in a fixed order (leaf index, pairing, leaf,
field digests, version, chain link, checkpoint), so a log gives the same finding every time.

What each check catches:

- leaf indexes 0, 1, 2, ... without a gap: a row of both tables removed from the middle;
- the k-th event and the k-th hash row name the same notification id: an event removed (its
  hash row has no event) or added (it has no hash row);
- the leaf recomputed from the stored columns equals the stored leaf: an edited event, the
  edited fields named by the field digests;
- a case's versions go 1, 2, 3, ... in log order: an event removed or reordered together with
  its hashes;
- each chain link equals SHA-256(the case's previous link || the leaf): a rewritten link, or
  an event added to or removed from a case with its hash row recomputed;
- the Merkle root at each checkpoint's size equals the checkpoint's root: history rewritten
  with every hash recomputed (only a checkpoint kept outside the database catches that);
  a checkpoint larger than the log: the log was truncated.

An event appended with correct hashes after the last checkpoint is indistinguishable from a
real one: a later checkpoint, signed by the key's holder, is what vouches for it.

Findings name cases by id (a UUID, no personal data), versions, leaf indexes, fields and
columns, never payload contents.

For speed on large logs, the same checks split in two (`check_rows` over `stretches` of the
log, side by side; `check_structure` over the hash rows alone): both pass exactly when
`verify_rows` passes, and when either fails, `verify_rows` names the finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from hashlib import sha256
from itertools import pairwise
from uuid import UUID

from domain.integrity.leaves import CHAIN_0, LeafEncodingError, changed_fields
from domain.integrity.merkle import Frontier, ProofError
from domain.integrity.stored import HashedEvent, StoredRow, column_leaf, leaf_record

RawEvent = tuple[int, bytes, int, str, bytes]
"""An events row as the verifier reads it: notification id, case id (16 bytes), case version,
topic, state."""

RawHash = tuple[int, int, bytes, int, bytes, bytes, bytes]
"""An event_hashes row as the verifier reads it: leaf index, notification id, case id
(16 bytes), case version, leaf, chain, fields."""

PROGRESS_EVERY = 1 << 14
"""Events between two calls of the progress callback."""


class FindingKind(StrEnum):
    """What the first bad spot of a log is."""

    CHANGED_FIELD = "changed_field"
    """A stored event no longer matches its leaf; `fields` names the changed fields."""
    MOVED_EVENT = "moved_event"
    """An event's case id changed, all else intact: it was moved to another case."""
    CHANGED_HASH = "changed_hash"
    """A column of an event_hashes row changed while its event is intact; `fields` names it."""
    MISSING_EVENT = "missing_event"
    """A hash row whose event is not in the events table: the event was deleted."""
    MISSING_HASH = "missing_hash"
    """An event with no hash row: its row was deleted, or the event added behind casetrack."""
    LEAF_INDEX_GAP = "leaf_index_gap"
    """Leaf indexes skip (or go back): a row of both tables was deleted, or an index edited."""
    VERSION_GAP = "version_gap"
    """A case skips a version that is nowhere later in the log: an event was removed."""
    VERSION_ORDER = "version_order"
    """A case's versions are out of order (swapped) or repeated."""
    BROKEN_LINK = "broken_link"
    """A case's chain link does not follow from its previous link and this event's leaf."""
    TRUNCATED = "truncated"
    """A checkpoint covers more events than the log holds: the log's tail was removed."""
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    """The log's first `size` events do not have the root of the checkpoint at that size."""


@dataclass(frozen=True)
class Finding:
    """The first bad spot of a log: what it is, where (the fields that apply), and a message
    that names it in plain words."""

    kind: FindingKind
    message: str
    leaf_index: int | None = None
    notification_id: int | None = None
    case_id: UUID | None = None
    case_version: int | None = None
    fields: tuple[str, ...] = ()


class LogTampered(ProofError):
    """The log does not verify; `finding` says where and how."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@dataclass(frozen=True)
class LogReport:
    """A log that verified: how much was checked, and (for the whole log) the tree head."""

    events: int
    cases: int
    whole_log: bool
    size: int | None = None
    root: bytes | None = None
    checkpoints_matched: tuple[int, ...] = ()


def verify_log(
    events: Iterable[StoredRow],
    hashes: Iterable[HashedEvent],
    checkpoints: Sequence[tuple[int, bytes]] = (),
    progress: Callable[[int], None] | None = None,
    *,
    whole_log: bool = True,
) -> LogReport:
    """Verify a log given as rows (see `verify_rows`; this one takes the typed rows)."""
    return verify_rows(
        ((e.notification_id, e.case_id.bytes, e.case_version, e.topic, e.state) for e in events),
        (_raw_hash(h) for h in hashes),
        checkpoints,
        progress,
        whole_log=whole_log,
    )


def _raw_hash(h: HashedEvent) -> RawHash:
    case = h.case_id.bytes
    return (h.leaf_index, h.notification_id, case, h.case_version, h.leaf, h.chain, h.fields)


def verify_rows(
    events: Iterable[RawEvent],
    hashes: Iterable[RawHash],
    checkpoints: Sequence[tuple[int, bytes]] = (),
    progress: Callable[[int], None] | None = None,
    *,
    whole_log: bool = True,
) -> LogReport:
    """Verify the events table's rows (in notification id order) against the event_hashes
    rows (in leaf index order) and `checkpoints`, (size, root) pairs whose signatures the
    caller checked. Raises LogTampered with the first finding.

    With `whole_log=False` the streams hold some cases whole (all their events and hash
    rows): each event, its leaf and its case's chain are checked, but not the leaf indexes
    or the tree, so `checkpoints` must be empty. `progress` gets the count of events
    checked every PROGRESS_EVERY events and at the end."""
    if checkpoints and not whole_log:
        raise ValueError("checkpoints cover the whole log: a part of it cannot match them")
    pending = sorted(checkpoints)
    frontier = Frontier()
    matched: list[int] = []
    # Each case's last version and chain link; the stored link equals the recomputed one
    # (or the walk stopped), so one link serves both.
    cases: dict[bytes, tuple[int, bytes]] = {}
    ev = iter(events)
    hs = iter(hashes)
    index = 0
    next_progress = PROGRESS_EVERY
    get_case = cases.get
    append = frontier.append
    leaf_of = column_leaf
    pair_at = _pair_finding

    if pending and pending[0][0] == 0:
        _check_checkpoint(frontier, pending, matched, None)
    for e in ev:
        h = next(hs, None)
        if h is None:
            raise LogTampered(_missing_hash(e, index, whole_log, after_last=True))
        nid, case, version, topic, state = e
        if h[0] != index and whole_log:
            raise LogTampered(_index_finding(e, h, index))
        if h[1] != nid:
            raise LogTampered(_alignment_finding(e, h, whole_log))
        try:
            leaf, digests = leaf_of(case, version, topic, state)
        except (LeafEncodingError, UnicodeError):
            raise LogTampered(pair_at(e, h, ev, None)) from None
        if leaf != h[4] or case != h[2] or version != h[3]:
            raise LogTampered(pair_at(e, h, ev, leaf))
        if digests != h[6]:
            raise LogTampered(_changed_hash(h, ("fields",), "its field digests"))
        last = get_case(case)
        if last is None:
            if version != 1:
                raise LogTampered(_version_finding(e, h, 0, ev))
            link = sha256(CHAIN_0 + leaf).digest()
        else:
            if version != last[0] + 1:
                raise LogTampered(_version_finding(e, h, last[0], ev))
            link = sha256(last[1] + leaf).digest()
        if link != h[5]:
            raise LogTampered(_broken_link(h))
        cases[case] = (version, link)
        index += 1
        if whole_log:
            append(leaf)
            if pending and pending[0][0] == index:
                _check_checkpoint(frontier, pending, matched, h)
        if progress is not None and index == next_progress:
            progress(index)
            next_progress += PROGRESS_EVERY
    extra = next(hs, None)
    if extra is not None:
        raise LogTampered(_missing_event(extra, after_last=True))
    if pending:
        size = pending[0][0]
        raise LogTampered(
            Finding(
                FindingKind.TRUNCATED,
                f"a checkpoint covers {size} events but the log holds {index}: the last"
                f" {size - index} were removed (the log was truncated)",
                leaf_index=index,
            )
        )
    if progress is not None:
        progress(index)
    return LogReport(
        events=index,
        cases=len(cases),
        whole_log=whole_log,
        size=frontier.size if whole_log else None,
        root=frontier.root() if whole_log else None,
        checkpoints_matched=tuple(matched),
    )


@dataclass(frozen=True)
class Stretch:
    """A part of the log for `check_rows`: the hash rows with leaf indexes in `leaf_indexes`
    and the events with notification ids in `notification_ids` ([low, high); None: open),
    the first of them at leaf index `first_index`."""

    first_index: int
    leaf_indexes: tuple[int | None, int | None]
    notification_ids: tuple[int | None, int | None]


def stretch_starts(size: int, parts: int) -> list[int]:
    """The leaf indexes where the 2nd to last of `parts` equal stretches of a log of `size`
    start: the hash rows whose notification ids `stretches` needs."""
    return [i * size // parts for i in range(1, parts)]


def stretches(size: int, parts: int, notification_ids: Mapping[int, int]) -> list[Stretch] | None:
    """`parts` stretches that cover every row of both tables: the first and the last open
    ended, so that no row escapes, and cut where the hash rows at `stretch_starts` are
    (`notification_ids`: leaf index -> notification id). None when one of those rows is
    missing or their notification ids do not go up: the log is not sound there, and only
    `verify_rows` says how."""
    starts = stretch_starts(size, parts)
    if any(start not in notification_ids for start in starts):
        return None
    cuts = [notification_ids[start] for start in starts]
    if any(a >= b for a, b in pairwise(cuts)):
        return None
    lows: list[int | None] = [None, *starts]
    highs: list[int | None] = [*starts, None]
    nid_lows: list[int | None] = [None, *cuts]
    nid_highs: list[int | None] = [*cuts, None]
    return [
        Stretch(0 if low is None else low, (low, high), (nid_low, nid_high))
        for low, high, nid_low, nid_high in zip(lows, highs, nid_lows, nid_highs, strict=True)
    ]


def check_rows(
    events: Iterable[RawEvent], hashes: Iterable[RawHash], first_index: int
) -> int | None:
    """The row checks of `verify_rows` alone, over a stretch of the log whose first hash row
    is at leaf index `first_index`: leaf indexes consecutive, each event paired with its hash
    row, its leaf, identity and field digests as stored. None when all hold; else the leaf
    index where one fails (`verify_rows` then says what and where precisely).

    With `check_structure` over the same snapshot, it splits `verify_rows` in two: stretches
    checked side by side in separate processes, the structure in one pass over the hashes.
    Every check of verify_rows is in one of the two, so both passing means it passes."""
    index = first_index
    hs = iter(hashes)
    leaf_of = column_leaf
    for nid, case, version, topic, state in events:
        h = next(hs, None)
        if h is None or h[0] != index or h[1] != nid or h[2] != case or h[3] != version:
            return index
        try:
            if leaf_of(case, version, topic, state) != (h[4], h[6]):
                return index
        except (LeafEncodingError, UnicodeError):
            return index
        index += 1
    return index if next(hs, None) is not None else None


def check_structure(
    hashes: Iterable[RawHash],
    checkpoints: Sequence[tuple[int, bytes]] = (),
    progress: Callable[[int], None] | None = None,
) -> LogReport | None:
    """The structure checks of `verify_rows` alone, from the hash rows: leaf indexes 0, 1,
    2, ..., each case's versions and chain links (from the stored leaves), the tree at each
    checkpoint, no checkpoint past the end. The report when all hold, else None (see
    `check_rows`)."""
    pending = sorted(checkpoints)
    frontier = Frontier()
    append = frontier.append
    matched: list[int] = []
    cases: dict[bytes, tuple[int, bytes]] = {}
    get_case = cases.get
    index = 0
    next_progress = PROGRESS_EVERY
    try:
        if pending and pending[0][0] == 0:
            _check_checkpoint(frontier, pending, matched, None)
        for h in hashes:
            case, version, leaf = h[2], h[3], h[4]
            last = get_case(case)
            if h[0] != index or version != (1 if last is None else last[0] + 1):
                return None
            link = sha256((CHAIN_0 if last is None else last[1]) + leaf).digest()
            if link != h[5]:
                return None
            cases[case] = (version, link)
            index += 1
            append(leaf)
            if pending and pending[0][0] == index:
                _check_checkpoint(frontier, pending, matched, h)
            if progress is not None and index == next_progress:
                progress(index)
                next_progress += PROGRESS_EVERY
    except LogTampered:
        return None
    if pending:
        return None
    if progress is not None:
        progress(index)
    return LogReport(
        events=index,
        cases=len(cases),
        whole_log=True,
        size=index,
        root=frontier.root(),
        checkpoints_matched=tuple(matched),
    )


def _check_checkpoint(
    frontier: Frontier,
    pending: list[tuple[int, bytes]],
    matched: list[int],
    last: RawHash | None,
) -> None:
    root = frontier.root()
    while pending and pending[0][0] == frontier.size:
        size, expected = pending.pop(0)
        if root != expected:
            lo = matched[-1] if matched else 0
            raise LogTampered(
                Finding(
                    FindingKind.CHECKPOINT_MISMATCH,
                    f"the first {size} events do not have the root of the checkpoint at size"
                    f" {size}: events between leaf indexes {lo} and {size - 1} were rewritten"
                    " with their hashes recomputed",
                    leaf_index=size - 1 if size else None,
                    notification_id=last[1] if last else None,
                )
            )
        matched.append(size)


def _where(nid: int, case: bytes, version: int, index: int | None = None) -> str:
    at = f"notification id {nid}" if index is None else f"leaf index {index}, notification id {nid}"
    return f"case {UUID(bytes=case)} version {version} ({at})"


def _index_finding(e: RawEvent, h: RawHash, index: int) -> Finding:
    """The hash row read at position `index` carries another leaf index."""
    if h[0] > index and e[0] < h[1]:
        return _missing_hash(e, index, whole_log=True, after_last=False)
    if h[0] > index:
        what = (
            f"leaf index {index} is missing: the next hash row is at leaf index {h[0]}"
            f" ({_where(h[1], h[2], h[3])}), so the event at leaf index {index} and its hash"
            " row were deleted"
        )
    else:
        what = (
            f"leaf index {h[0]} ({_where(h[1], h[2], h[3])}) appears where leaf index {index}"
            " was expected: a leaf index was altered"
        )
    return Finding(
        FindingKind.LEAF_INDEX_GAP,
        what,
        leaf_index=index,
        notification_id=h[1],
        case_id=UUID(bytes=h[2]),
        case_version=h[3],
        fields=("leaf_index",),
    )


def _missing_hash(e: RawEvent, index: int, whole_log: bool, *, after_last: bool) -> Finding:
    nid, case, version = e[0], e[1], e[2]
    where = f" (leaf index {index} expected)" if whole_log else ""
    tail = (
        ": the log's hashes end before its events (an interrupted `casetrack db init`"
        " backfill, or events added behind casetrack's back)"
        if after_last
        else ": its hash row was deleted, or the event was added behind casetrack's back"
    )
    return Finding(
        FindingKind.MISSING_HASH,
        f"{_where(nid, case, version)} has no event_hashes row{where}{tail}",
        leaf_index=index if whole_log else None,
        notification_id=nid,
        case_id=UUID(bytes=case),
        case_version=version,
    )


def _missing_event(h: RawHash, *, after_last: bool) -> Finding:
    tail = " (the events table ends before its hashes)" if after_last else ""
    return Finding(
        FindingKind.MISSING_EVENT,
        f"the event of {_where(h[1], h[2], h[3], h[0])} is not in the events table: it was"
        f" deleted{tail}",
        leaf_index=h[0],
        notification_id=h[1],
        case_id=UUID(bytes=h[2]),
        case_version=h[3],
    )


def _alignment_finding(e: RawEvent, h: RawHash, whole_log: bool) -> Finding:
    """The event and the hash row at one position name different notification ids."""
    if _leaf_matches(e, h):
        return Finding(
            FindingKind.CHANGED_HASH,
            f"the event_hashes row of {_where(h[1], h[2], h[3], h[0])} names notification id"
            f" {h[1]}, but the event it hashes is stored at notification id {e[0]}: one of the"
            " two ids was altered",
            leaf_index=h[0],
            notification_id=h[1],
            case_id=UUID(bytes=h[2]),
            case_version=h[3],
            fields=("notification_id",),
        )
    if h[1] < e[0]:
        return _missing_event(h, after_last=False)
    return _missing_hash(e, h[0], whole_log, after_last=False)


def _leaf_matches(e: RawEvent, h: RawHash) -> bool:
    try:
        return column_leaf(e[1], e[2], e[3], e[4])[0] == h[4] and (e[1], e[2]) == (h[2], h[3])
    except (LeafEncodingError, UnicodeError):
        return False


def _changed_hash(h: RawHash, columns: tuple[str, ...], what: str) -> Finding:
    return Finding(
        FindingKind.CHANGED_HASH,
        f"the event_hashes row of {_where(h[1], h[2], h[3], h[0])} was altered: {what} no"
        " longer matches the event, which is intact",
        leaf_index=h[0],
        notification_id=h[1],
        case_id=UUID(bytes=h[2]),
        case_version=h[3],
        fields=columns,
    )


def _pair_finding(e: RawEvent, h: RawHash, rest: Iterator[RawEvent], leaf: bytes | None) -> Finding:
    """The event at a position does not match its hash row's leaf or identity."""
    nid, case, version, topic, state = e
    if leaf is not None and leaf == h[4]:  # the event is intact: the hash row's identity changed
        columns = tuple(
            column
            for column, stored, hashed in (("case_id", case, h[2]), ("case_version", version, h[3]))
            if stored != hashed
        )
        what = " and ".join(f"its {c.replace('_', ' ')}" for c in columns)
        return _changed_hash(h, columns, what)
    hashed_as = f"case {UUID(bytes=h[2])} version {h[3]}"
    at = f"leaf index {h[0]}, notification id {nid}"
    if (case, version) != (h[2], h[3]):
        try:
            identity_only = column_leaf(h[2], h[3], topic, state)[0] == h[4]
        except LeafEncodingError:
            identity_only = False
        if identity_only and case != h[2]:
            return Finding(
                FindingKind.MOVED_EVENT,
                f"the event hashed as {hashed_as} ({at}) now belongs to case"
                f" {UUID(bytes=case)} as version {version}: it was moved to another case",
                leaf_index=h[0],
                notification_id=nid,
                case_id=UUID(bytes=h[2]),
                case_version=h[3],
                fields=("case id",) if version == h[3] else ("case id", "case version"),
            )
        if identity_only:
            swapped = next((later for later in rest if (later[1], later[2]) == (case, h[3])), None)
            if swapped is not None:
                return Finding(
                    FindingKind.VERSION_ORDER,
                    f"case {UUID(bytes=case)}: versions {h[3]} and {version} were swapped (the"
                    f" event hashed as version {h[3]}, {at}, is stored as version {version},"
                    f" and the event at notification id {swapped[0]} as version {h[3]})",
                    leaf_index=h[0],
                    notification_id=nid,
                    case_id=UUID(bytes=case),
                    case_version=h[3],
                    fields=("case version",),
                )
    fields = _changed_fields(e, h)
    if not fields:  # the event matches its digests, which are no proof: they are unkeyed
        return Finding(
            FindingKind.CHANGED_HASH,
            f"the event of {hashed_as} ({at}) no longer matches its leaf, and its field"
            " checksums name no field: either the leaf was rewritten, or the event was altered"
            " and its checksums rewritten to match (a checkpoint covering it tells which)",
            leaf_index=h[0],
            notification_id=nid,
            case_id=UUID(bytes=h[2]),
            case_version=h[3],
            fields=("leaf",),
        )
    named = ", ".join(fields)
    now = (
        f" (stored now as case {UUID(bytes=case)} version {version})"
        if (case, version) != (h[2], h[3])
        else ""
    )
    return Finding(
        FindingKind.CHANGED_FIELD,
        f"the event of {hashed_as} ({at}) was altered{now}: changed {named}",
        leaf_index=h[0],
        notification_id=nid,
        case_id=UUID(bytes=h[2]),
        case_version=h[3],
        fields=fields,
    )


def _changed_fields(e: RawEvent, h: RawHash) -> tuple[str, ...]:
    """The fields of the stored event that differ from those its hash row's digests cover."""
    record = leaf_record(StoredRow(e[0], UUID(bytes=e[1]), e[2], e[3], e[4]))
    try:
        return tuple(changed_fields(record, h[6]))
    except LeafEncodingError:  # a case version out of range: name it and compare the rest
        rest = changed_fields(replace(record, case_version=h[3]), h[6])
        return ("case version", *(f for f in rest if f != "case version"))


def _version_finding(e: RawEvent, h: RawHash, last: int, rest: Iterator[RawEvent]) -> Finding:
    nid, case, version = e[0], e[1], e[2]
    where = _where(nid, case, version, h[0])
    expected = last + 1
    if version <= last:
        kind, what = (
            FindingKind.VERSION_ORDER,
            f"{where} follows version {last} of its case: versions out of order or repeated",
        )
    else:
        later = next((r for r in rest if (r[1], r[2]) == (case, expected)), None)
        if later is not None:
            kind, what = (
                FindingKind.VERSION_ORDER,
                f"{where} comes before version {expected} (notification id {later[0]}):"
                " the case's events were reordered",
            )
        else:
            previous = f"version {last}" if last else "the case's start"
            kind, what = (
                FindingKind.VERSION_GAP,
                f"{where} follows {previous}: version {expected} is missing from the log"
                " (deleted, or moved to another case)",
            )
    return Finding(
        kind,
        what,
        leaf_index=h[0],
        notification_id=nid,
        case_id=UUID(bytes=case),
        case_version=version,
        fields=("case version",),
    )


def _broken_link(h: RawHash) -> Finding:
    version = h[3]
    previous = f"link {version - 1}" if version > 1 else "the chain's start"
    return Finding(
        FindingKind.BROKEN_LINK,
        f"the chain link of {_where(h[1], h[2], version, h[0])} does not follow from"
        f" {previous} and this event's leaf: the link was rewritten, or an event of this case"
        " was added or removed with its hashes recomputed",
        leaf_index=h[0],
        notification_id=h[1],
        case_id=UUID(bytes=h[2]),
        case_version=version,
        fields=("chain",),
    )

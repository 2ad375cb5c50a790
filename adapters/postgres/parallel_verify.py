"""The whole log verified on every core: stretches of rows in worker processes, the
structure in this one, all from one snapshot (domain/integrity/verify.py, check_rows and
check_structure).

Recomputing leaves costs most of a verification and needs no state from earlier events, so
stretches of the log are checked side by side, each in a spawned process with its own
connection that imports this session's exported snapshot. Meanwhile this process walks the
hash rows alone (leaf indexes, versions, chain links, the tree at each checkpoint). When
both pass, the log verifies (a property test holds this to verify_rows); when anything
fails, the caller walks the log once more with verify_rows, in the same snapshot, for the
exact first finding.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

import psycopg

from adapters.postgres.event_hashes import EventHashes, LogReader
from domain.integrity.verify import (
    LogReport,
    Stretch,
    check_rows,
    check_structure,
    stretch_starts,
    stretches,
)

PARALLEL_FROM = 200_000
"""Events; below this, starting processes costs more than it saves."""


def worker_count(requested: int | None, size: int) -> int:
    """`requested`, else one per core (at most 8) from PARALLEL_FROM events, else 1."""
    if requested is not None:
        return max(requested, 1)
    return min(os.cpu_count() or 1, 8) if size >= PARALLEL_FROM else 1


def verify_in_parallel(
    reader: LogReader,
    url: str,
    hashes: EventHashes,
    parts: int,
    checkpoints: Sequence[tuple[int, bytes]],
    progress: Callable[[int], None] | None,
) -> LogReport | None:
    """The report when the whole log verifies; None when something fails (or the log
    cannot be cut into `parts` stretches), for verify_rows to name."""
    size = reader.size()
    cut = stretches(size, parts, reader.notification_ids(stretch_starts(size, parts)))
    if cut is None:
        return None
    snapshot = reader.export_snapshot()
    context = multiprocessing.get_context("spawn")  # no inherited connections or locks
    with ProcessPoolExecutor(len(cut), mp_context=context) as pool:
        checked = [
            pool.submit(_check_stretch, url, hashes.schema, hashes.events_table, snapshot, part)
            for part in cut
        ]
        structure = check_structure(reader.hashes(), checkpoints, progress)
        rows_hold = all(future.result() is None for future in checked)
    return structure if rows_hold else None


def _check_stretch(
    url: str, schema: str, events_table: str, snapshot: str, part: Stretch
) -> int | None:
    """check_rows over one stretch, in a worker process, in the caller's snapshot."""
    with (
        psycopg.connect(url, autocommit=True) as conn,
        EventHashes(schema, events_table).reading(conn, snapshot) as reader,
    ):
        return check_rows(
            reader.events(notification_ids=part.notification_ids),
            reader.hashes(leaf_indexes=part.leaf_indexes),
            part.first_index,
        )

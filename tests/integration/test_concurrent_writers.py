"""Two writers appending to the same cases at once: conflicts are retried, nothing lost,
and the log stays one gapless chain (every event hashed once, in order)."""

from __future__ import annotations

import threading

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from consumers.file_ingest import ingest_lines
from simulation import casegen
from tests.integration.hashes import assert_hashes_intact
from tests.integration.test_ingest import _lines
from tests.stores import count
from tests.vault import TEST_VAULT


def test_two_writers_on_the_same_file(database_url: str, schema: str) -> None:
    lines = _lines(casegen.generate(80, seed=21))
    stores = [CaseStore(database_url, schema, TEST_VAULT) for _ in range(2)]
    summaries = []
    errors: list[BaseException] = []

    def run(store: CaseStore, batch: int) -> None:
        try:
            summaries.append(ingest_lines(lines, f"writer-{batch}", store, batch_size=batch))
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [
        threading.Thread(target=run, args=(s, b)) for s, b in zip(stores, (7, 13), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors
        # Each valid line is accepted by exactly one writer and a duplicate for the other.
        assert sum(s.accepted for s in summaries) == count(stores[0], EVENTS_TABLE)
        assert sum(s.rejected for s in summaries) == 0
        reference = casegen.generate(80, seed=21)
        assert count(stores[0], EVENTS_TABLE) == len(reference)
        assert_hashes_intact(stores[0])
    finally:
        for s in stores:
            s.close()

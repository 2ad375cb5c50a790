"""What the event_hashes table must hold: one row per stored event, leaf indexes 0..n-1 in
notification order, and each row equal to what the pure writer (domain/integrity/stored.py)
computes from the stored events."""

from __future__ import annotations

from adapters.postgres.event_store import CaseStore
from domain.integrity.stored import HashedEvent, StoredRow, hash_events
from tests.stores import rows


def stored_rows(store: CaseStore) -> list[StoredRow]:
    return [
        StoredRow(r["notification_id"], r["originator_id"], r["originator_version"], r["topic"],
                  bytes(r["state"]))
        for r in rows(
            store,
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {schema}.{events} ORDER BY notification_id",
        )
    ]  # fmt: skip


def stored_hashes(store: CaseStore) -> list[HashedEvent]:
    return [
        HashedEvent(**{k: bytes(v) if isinstance(v, memoryview) else v for k, v in r.items()})
        for r in rows(
            store,
            "SELECT leaf_index, notification_id, case_id, case_version, leaf, chain, fields"
            " FROM {schema}.event_hashes ORDER BY leaf_index",
        )
    ]


def assert_hashes_intact(store: CaseStore) -> None:
    """Every event hashed exactly once, in order, with the chain the writer must compute."""
    events = stored_rows(store)
    assert stored_hashes(store) == hash_events(events, {}, 0)

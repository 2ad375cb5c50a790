"""Invariants of the one sanctioned rewrite over random histories: sealing a plaintext log,
in batches of any size and interrupted anywhere, changes no event as read, leaves no
personal value in plaintext, and yields a log whose every leaf and chain verifies."""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from adapters.postgres.event_store import CaseStore
from adapters.privacy.field_cipher import is_sealed
from adapters.privacy.log_sealing import seal_plaintext_log
from consumers.file_ingest import ingest_lines
from domain.personal_data import personal_paths
from tests.integration.test_log_sealing import plaintext_store
from tests.property.strategies import DB, History, histories
from tests.stores import rows, scratch_store
from tests.vault import TEST_VAULT


class _Crash(Exception):
    pass


def stored(store: CaseStore) -> list[StoredEvent]:
    return [
        StoredEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
        for r in rows(
            store,
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{events}"
            " ORDER BY notification_id",
        )
    ]


def read(store: CaseStore) -> list[dict[str, Any]]:
    """Every event as the mapper decodes it (sealed values opened)."""
    events = stored(store)
    store.app.mapper.prefetch(e.state for e in events)
    return [dict(vars(store.app.mapper.to_domain_event(e))) for e in events]


@given(
    history=histories(max_cases=5, max_events=10),
    batch=st.integers(1, 8),
    crash_after=st.none() | st.integers(1, 3),
)
@DB
def test_sealing_changes_no_event_as_read_and_the_log_verifies(
    database_url: str, history: History, batch: int, crash_after: int | None
) -> None:
    with scratch_store(database_url) as scratch:
        old = plaintext_store(database_url, scratch.schema)
        ingest_lines(list(history.lines), "old.jsonl", old)
        before = read(old)
        old.close()
        store = CaseStore(database_url, scratch.schema, TEST_VAULT)
        try:
            batches = 0

            def crash(done: int) -> None:
                nonlocal batches
                batches += 1
                if batches == crash_after:
                    raise _Crash

            try:
                seal_plaintext_log(store, None, batch=batch, progress=crash)
            except _Crash:
                seal_plaintext_log(store, None, batch=batch)
            assert read(store) == before
            for event in stored(store):
                state = orjson.loads(event.state)
                for _owner, holder, field in personal_paths(state, event.topic):
                    assert is_sealed((state[holder] if holder else state)[field])
            store.integrity.verify()  # LogTampered names the first bad leaf or link
        finally:
            store.close()

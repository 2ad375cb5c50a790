"""CaseRecorder under eventsourcing's own ApplicationRecorder test cases.

The library's suite is the specification of what a recorder must do; ours
inserts differently (binary COPY, dead letters and offsets in the same
transaction), so it runs that suite on real PostgreSQL, each test in a fresh
schema made by ``casetrack db init``.
"""

from __future__ import annotations

import secrets

import pytest
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from adapters.postgres.event_store import CaseRecorder, CaseStore
from adapters.postgres.schema import drop_schema, init_schema
from tests.vault import TEST_VAULT


class TestCaseRecorder(ApplicationRecorderTestCase[CaseRecorder]):
    database_url: str

    @pytest.fixture(autouse=True)
    def _database(self, database_url: str) -> None:
        self.database_url = database_url

    def create_recorder(self) -> CaseRecorder:
        schema = f"t_{secrets.token_hex(6)}"
        init_schema(self.database_url, schema)
        self.addCleanup(drop_schema, self.database_url, schema)
        store = CaseStore(self.database_url, schema, TEST_VAULT)
        self.addCleanup(store.close)
        assert isinstance(store.recorder, CaseRecorder)
        return store.recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


def test_notification_ids_are_right_when_the_sequence_leaves_gaps(store: CaseStore) -> None:
    """The ids are taken as the sequence's last ones only when the first and last rows
    prove it; a sequence that skips values (cached blocks, another increment) makes the
    recorder read them back."""
    from uuid import uuid4

    from eventsourcing.persistence import StoredEvent
    from psycopg.sql import SQL, Identifier

    from adapters.postgres.event_store import EVENTS_TABLE

    with store.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL("ALTER SEQUENCE {}.{} INCREMENT BY 3").format(
                Identifier(store.schema), Identifier(f"{EVENTS_TABLE}_notification_id_seq")
            )
        )
    case = uuid4()
    events = [StoredEvent(case, v, "topic", b"{}") for v in (1, 2, 3)]
    ids = store.recorder.insert_events(events)
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(
            SQL("SELECT notification_id FROM {}.{} ORDER BY originator_version").format(
                Identifier(store.schema), Identifier(EVENTS_TABLE)
            )
        )
        stored = [r["notification_id"] for r in curs]
    assert ids == stored and stored[1] - stored[0] == 3

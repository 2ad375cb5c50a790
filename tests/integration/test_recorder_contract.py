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


class TestCaseRecorder(ApplicationRecorderTestCase[CaseRecorder]):
    database_url: str

    @pytest.fixture(autouse=True)
    def _database(self, database_url: str) -> None:
        self.database_url = database_url

    def create_recorder(self) -> CaseRecorder:
        schema = f"t_{secrets.token_hex(6)}"
        init_schema(self.database_url, schema)
        self.addCleanup(drop_schema, self.database_url, schema)
        store = CaseStore(self.database_url, schema)
        self.addCleanup(store.close)
        assert isinstance(store.recorder, CaseRecorder)
        return store.recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()

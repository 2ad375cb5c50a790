"""The API's own read models: case_parties and tracker_history agree with the log
(incremental projection == replay) and tracker_history with case_history, role by role."""

from __future__ import annotations

from typing import Any

import orjson
from psycopg.sql import SQL, Identifier

from consumers.file_ingest import ingest_lines
from projections import rebuild, timeline
from projections.case_parties import CasePartiesProjection
from projections.projector import Projector
from projections.roles import ROLES
from projections.tracker_history import TrackerHistoryProjection
from simulation import casegen
from tests.api.conftest import Files


def test_incremental_projection_equals_a_replay(store: Any) -> None:
    lines = casegen.generate(40, seed=8)
    ingest_lines((line.encode() for line in lines), "test", store)
    for projection in (CasePartiesProjection(), TrackerHistoryProjection()):
        Projector(store, projection, page_size=37).catch_up()  # many pages: many appends
    report = rebuild.verify(store, [CasePartiesProjection(), TrackerHistoryProjection()])
    assert report.ok, report.differences
    assert report.tables["case_parties"].rows >= 80


def test_tracker_history_matches_case_history(store: Any, files: Files) -> None:
    """Each role's row holds that role's lines of case_history, as readers get them."""
    schema = Identifier(store.schema)
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(SQL("SELECT * FROM {}.case_history ORDER BY case_id, version").format(schema))
        lines: dict[Any, list[dict[str, Any]]] = {}
        for row in curs.fetchall():
            lines.setdefault(row["case_id"], []).append(dict(row))
        curs.execute(
            SQL("SELECT case_id, role, history_en, history_fr FROM {}.tracker_history").format(
                schema
            )
        )
        rows = curs.fetchall()
    assert len(lines) == len(files.received)
    assert len(rows) == len(ROLES) * len(files.received)
    for row in rows:
        mine = timeline.for_role(lines[row["case_id"]], row["role"])
        for lang in ("en", "fr"):
            served = [timeline.served(line, lang) for line in mine]
            assert orjson.loads(row[f"history_{lang}"]) == served

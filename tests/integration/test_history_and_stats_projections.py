"""case_history and processing_stats against real PostgreSQL.

The incremental projector, whatever its page size and however ingestion is
chunked, must leave exactly the rows a blue-green rebuild produces; and the
rows must say what the events say.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from typing import Any

import pytest
from psycopg.sql import SQL, Identifier

from adapters.postgres.event_store import CaseStore
from consumers.file_ingest import ingest_lines
from domain.application_number import case_id
from projections import case_history_table, processing_stats_table, timeline
from projections import processing_stats as ps
from projections.case_history_table import CaseHistoryProjection
from projections.processing_stats_table import ProcessingStatsProjection
from projections.projector import Projection, Projector
from projections.rebuild import rebuild
from projections.registry import all_projections
from simulation import casegen
from tests.vault import open_test_store

CASES = 60
PAGE_SIZES = (1, 5, 64, 5000)


def _tables(store: CaseStore, projection: Projection, suffix: str = "") -> dict[str, list[Any]]:
    """Every row of every table of ``projection``, sorted by key."""
    found = {}
    with store.datastore.transaction(commit=False) as curs:
        for table in projection.tables:
            curs.execute(
                SQL("SELECT {} FROM {} ORDER BY {}").format(
                    SQL(", ").join(map(Identifier, table.column_names)),
                    table.ident(store.schema, suffix),
                    SQL(", ").join(map(Identifier, table.key)),
                )
            )
            found[table.name] = [tuple(r.values()) for r in curs.fetchall()]
    return found


def _ingest_in_chunks(
    store: CaseStore, lines: list[str], projections: list[Projection], chunks: int
) -> None:
    """Ingest a few chunks, letting the live projectors catch up after each."""
    size = -(-len(lines) // chunks)
    for i in range(0, len(lines), size):
        raw = [(line + "\n").encode() for line in lines[i : i + size]]
        ingest_lines(raw, f"chunk-{i}.jsonl", store, batch_size=97)
        for projection in projections:
            Projector(store, projection, page_size=29).catch_up()


@pytest.fixture
def lines() -> list[str]:
    return casegen.generate(CASES, seed=11, duplicate_share=0.02, invalid_share=0.01)


@pytest.mark.parametrize("projection", [CaseHistoryProjection(), ProcessingStatsProjection()])
def test_incremental_equals_rebuild_for_any_page_size(
    store: CaseStore, lines: list[str], projection: Projection
) -> None:
    _ingest_in_chunks(store, lines, [projection], chunks=3)
    live = _tables(store, projection)
    assert all(live.values())

    for size in PAGE_SIZES:  # each page size into tables of its own
        suffix = f"__p{size}"
        with store.datastore.transaction(commit=True) as curs:
            for table in projection.tables:
                for statement in table.create(store.schema, suffix):
                    curs.execute(statement)
        Projector(store, projection, page_size=size, suffix=suffix).catch_up()
        assert _tables(store, projection, suffix) == live, f"page size {size}"

    report = rebuild(store, [projection])
    assert report.ok
    assert _tables(store, projection) == live
    assert Projector(store, projection).catch_up() == 0


def test_a_rebuild_split_over_worker_processes_equals_one_in_process(
    store: CaseStore, lines: list[str]
) -> None:
    projections = list(all_projections().values())
    ingest_lines([(line + "\n").encode() for line in lines], "feed.jsonl", store)
    rebuild(store, projections, workers=1)
    alone = [_tables(store, p) for p in projections]
    # every view filled (notify_staged, a rebuild's staging, is empty once swapped in)
    assert all(rows for tables in alone for name, rows in tables.items() if name != "notify_staged")

    # Spawned processes, case id ranges, each opening its own store.
    report = rebuild(store, projections, workers=3, opener=open_test_store)
    assert report.ok and report.events == store.recorder.max_notification_id()
    assert [_tables(store, p) for p in projections] == alone


def _events(lines: list[str]) -> list[dict[str, Any]]:
    """The distinct valid events of the feed, in order."""
    seen: set[str] = set()
    found = []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("event_id") not in seen:
            seen.add(event.get("event_id", ""))
            found.append(event)
    return found


def test_history_says_what_happened(store: CaseStore) -> None:
    lines = casegen.generate(40, seed=3)
    projection = CaseHistoryProjection()
    _ingest_in_chunks(store, lines, [projection], chunks=2)
    events = _events(lines)

    decisions = [e for e in events if e["type"] == "decision.made"]
    assert decisions
    decision = decisions[0]
    with store.datastore.transaction(commit=False) as curs:
        history = case_history_table.read(
            curs, store.schema, case_id(decision["application_number"])
        )
        curs.execute(
            SQL("SELECT count(*) AS n FROM {}.case_history").format(Identifier(store.schema))
        )
        total = curs.fetchone()
    assert [h["version"] for h in history] == sorted(h["version"] for h in history)
    assert history[0]["event_type"] == "application.received"
    (entry,) = [h for h in history if h["event_type"] == "decision.made"]
    occurred = datetime.fromisoformat(decision["occurred_at"].replace("Z", "+00:00"))
    assert entry["occurred_at"] == occurred
    assert entry["recorded_at"].tzinfo is not None
    assert entry["recorded_at"] > entry["occurred_at"]  # the feed is from the past
    outcome = decision["payload"]["outcome"]
    assert entry["title_en"] == timeline.TEXTS[f"decision.made.{outcome}"].title_en
    shown = [e for e in events if e["type"] not in timeline.INTERNAL]
    assert total is not None and total["n"] == len(shown)


def test_stats_count_what_was_received_and_decided(store: CaseStore) -> None:
    lines = casegen.generate(500, seed=5)
    projection = ProcessingStatsProjection()
    _ingest_in_chunks(store, lines, [projection], chunks=2)
    events = _events(lines)
    received = {
        e["application_number"]: e["payload"] for e in events if e["type"] == "application.received"
    }

    def by_category(event_type: str) -> Counter[str]:
        return Counter(
            received[e["application_number"]]["category"] for e in events if e["type"] == event_type
        )

    decided, withdrawn = by_category("decision.made"), by_category("application.withdrawn")
    today = date(2025, 7, 1)
    with store.datastore.transaction(commit=False) as curs:
        for category, count in Counter(p["category"] for p in received.values()).items():
            months = processing_stats_table.category_stats(curs, store.schema, category)
            assert sum(m["received"] for m in months) == count
            assert sum(m["decided"] for m in months) == decided[category]
            assert sum(m["withdrawn"] for m in months) == withdrawn[category]
            for m in months:
                assert m["approved"] + m["refused"] == m["decided"]
                assert m["open"] == m["received"] - m["decided"] - m["withdrawn"]
                if m["decided"]:
                    assert m["median_days"] <= m["p80_days"] <= m["p90_days"]
                    assert 0.0 <= m["within_standard"] <= 1.0
                else:
                    assert m["median_days"] is None
            bands = processing_stats_table.backlog(curs, store.schema, category, today)
            assert sum(bands.values()) == sum(m["open"] for m in months)

        found = processing_stats_table.estimate(
            curs, store.schema, "spouse", date(2023, 5, 10), today
        )

    # The same estimate straight from the feed: spouse cases received in 2023-Q2.
    days = []
    for e in events:
        case = received[e["application_number"]]
        if e["type"] == "decision.made" and case["category"] == "spouse":
            on = date.fromisoformat(case["received_on"])
            if date(2023, 4, 1) <= on < date(2023, 7, 1):
                decided_on = e["payload"].get("decided_on") or e["occurred_at"][:10]
                days.append((date.fromisoformat(decided_on) - on).days)
    assert found["quarter"] == "2023-Q2"
    assert found["similar_decided"] == len(days) >= ps.MIN_DECIDED
    assert found["enough_data"]
    n = found["months"]
    assert found["percent"] == 100 * sum(d <= ps.month_days(n) for d in days) // len(days)
    assert found["percent"] >= 80
    assert 100 * sum(d <= ps.month_days(n - 1) for d in days) < 80 * len(days)
    assert f"{found['percent']}%" in found["text_en"]
    assert f"{found['percent']} %" in found["text_fr"]

"""The tracker_history table: each case's history as ready-made JSON, per language.

The API serves a file's history with every read; aggregating case_history
rows into JSON at read time cost PostgreSQL as much as the rest of the read
(scripts/bench_api.py). This view keeps the JSON array the API sends, in
English and in French, appending a case's new history lines page by page.
Entries are the same as case_history's (projections.timeline), times in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed

from projections import timeline
from projections.projector import PerCaseReplayer, Positioned, Row
from projections.tables import Table

TABLE = Table(
    name="tracker_history",
    columns=(
        ("case_id", "uuid NOT NULL"),
        ("history_en", "text NOT NULL"),
        ("history_fr", "text NOT NULL"),
        ("version", "bigint NOT NULL"),
    ),
    key=("case_id",),
)


def _lines(events: Iterable[Positioned]) -> dict[Any, tuple[list[Any], list[Any], int]]:
    """Per case: the new entries in each language and the last version seen."""
    found: dict[Any, tuple[list[Any], list[Any], int]] = {}
    for p in events:
        entry = timeline.entry(p.event)
        en, fr, _ = found.get(p.case_id, ([], [], 0))
        if entry is not None:
            common = {
                "event_type": entry["event_type"],
                "occurred_at": _utc(entry["occurred_at"]),
                "recorded_at": _utc(entry["recorded_at"]),
            }
            en.append({"event_type": common["event_type"], "title": entry["title_en"],
                       "text": entry["text_en"], "occurred_at": common["occurred_at"],
                       "recorded_at": common["recorded_at"]})  # fmt: skip
            fr.append({"event_type": common["event_type"], "title": entry["title_fr"],
                       "text": entry["text_fr"], "occurred_at": common["occurred_at"],
                       "recorded_at": common["recorded_at"]})  # fmt: skip
        found[p.case_id] = (en, fr, p.event.originator_version)
    return found


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _json(entries: list[Any]) -> str:
    return orjson.dumps(entries).decode()


class TrackerHistoryReplayer(PerCaseReplayer):
    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        for case_id, (en, fr, version) in _lines(events).items():
            yield TABLE.name, (case_id, _json(en), _json(fr), version)


class TrackerHistoryProjection:
    name = "tracker_history"
    tables = (TABLE,)

    def replayer(self) -> TrackerHistoryReplayer:
        return TrackerHistoryReplayer()

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        table = tables[TABLE.name]
        new = _lines(page)
        curs.execute(
            SQL("SELECT case_id, history_en, history_fr FROM {} WHERE case_id = ANY(%s)").format(
                table
            ),
            (list(new),),
        )
        stored = {r["case_id"]: (r["history_en"], r["history_fr"]) for r in curs.fetchall()}
        rows = []
        for case_id, (en, fr, version) in new.items():
            old_en, old_fr = stored.get(case_id, ("[]", "[]"))
            rows.append(
                (
                    case_id,
                    _json(orjson.loads(old_en) + en) if en else old_en,
                    _json(orjson.loads(old_fr) + fr) if fr else old_fr,
                    version,
                )
            )
        curs.executemany(
            SQL(
                "INSERT INTO {} (case_id, history_en, history_fr, version) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (case_id) DO UPDATE SET history_en = EXCLUDED.history_en,"
                " history_fr = EXCLUDED.history_fr, version = EXCLUDED.version"
            ).format(table),
            rows,
        )

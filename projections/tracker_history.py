"""The tracker_history table: each case's history as ready-made JSON, per role and language.

The API serves a file's history with every read; aggregating case_history
rows into JSON at read time cost PostgreSQL as much as the rest of the read
(scripts/bench_api.py). This view keeps the JSON array the API sends, one row
per case and role (what ``timeline.for_role`` lets that role see), in English
and in French, appending a case's new history lines page by page; a role's row
(and its version) changes only when that role gets a new line. The read
joins it on the caller's role, so no reader can get another role's lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed

from projections import timeline
from projections.event_log import Positioned
from projections.projector import PerCaseReplayer
from projections.roles import ROLES
from projections.tables import Row, Table

TABLE = Table(
    name="tracker_history",
    columns=(
        ("case_id", "uuid NOT NULL"),
        ("role", "text NOT NULL"),
        ("history_en", "text NOT NULL"),
        ("history_fr", "text NOT NULL"),
        ("version", "bigint NOT NULL"),
    ),
    key=("case_id", "role"),
)

# Per role: the new lines in English and in French, and the version of the last one
# (the case's last version when the role got no line).
Lines = dict[str, tuple[list[Any], list[Any], int]]


def _lines(events: Iterable[Positioned]) -> dict[Any, Lines]:
    """Per case: each role's new lines in each language, with the version of its last."""
    shown: dict[Any, list[tuple[timeline.Entry, int]]] = {}
    last: dict[Any, int] = {}
    for p in events:
        entry = timeline.entry(p.event)
        version = p.event.originator_version
        found = shown.setdefault(p.case_id, [])
        if entry is not None:
            found.append((entry, version))
        last[p.case_id] = version
    result = {}
    for case_id, entries in shown.items():
        served = [(timeline.served(e, "en"), timeline.served(e, "fr"), v, e) for e, v in entries]
        lines: Lines = {}
        for role in ROLES:  # each line served once, shared by the roles that see it
            mine = [line for line in served if timeline.sees(role, line[3]["event_type"])]
            lines[role] = (
                [en for en, _, _, _ in mine],
                [fr for _, fr, _, _ in mine],
                mine[-1][2] if mine else last[case_id],
            )
        result[case_id] = lines
    return result


def _json(entries: list[Any]) -> str:
    return orjson.dumps(entries).decode()


class TrackerHistoryReplayer(PerCaseReplayer):
    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        for case_id, lines in _lines(events).items():
            for role, (en, fr, version) in lines.items():
                yield TABLE.name, (case_id, role, _json(en), _json(fr), version)


class TrackerHistoryProjection:
    name = "tracker_history"
    tables: tuple[Table, ...] = (TABLE,)

    def replayer(self) -> TrackerHistoryReplayer:
        return TrackerHistoryReplayer()

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        table = tables[TABLE.name]
        new = _lines(page)
        curs.execute(
            SQL(
                "SELECT case_id, role, history_en, history_fr FROM {} WHERE case_id = ANY(%b)"
            ).format(table),
            (list(new),),
        )
        stored = {
            (r["case_id"], r["role"]): (r["history_en"], r["history_fr"]) for r in curs.fetchall()
        }
        rows = []
        for case_id, lines in new.items():
            for role, (en, fr, version) in lines.items():
                if not en and (case_id, role) in stored:
                    continue  # nothing new for this role: its row stays as it is
                old_en, old_fr = stored.get((case_id, role), ("[]", "[]"))
                rows.append(
                    (
                        case_id,
                        role,
                        _json(orjson.loads(old_en) + en) if en else old_en,
                        _json(orjson.loads(old_fr) + fr) if fr else old_fr,
                        version,
                    )
                )
        curs.executemany(
            SQL(
                "INSERT INTO {} (case_id, role, history_en, history_fr, version)"
                " VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (case_id, role) DO UPDATE SET history_en = EXCLUDED.history_en,"
                " history_fr = EXCLUDED.history_fr, version = EXCLUDED.version"
            ).format(table),
            rows,
        )

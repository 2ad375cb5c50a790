"""Tables of the processing_stats projection, and the reads that compute figures.

``stats_monthly`` and ``stats_durations`` are counters, updated with
``counter + delta`` upserts; ``stats_cases`` remembers each case's category,
month and whether it is closed, so a decision arriving pages later knows
which counters to move (and a second closing event moves none). Percentiles,
backlog and estimates are computed at read time from these counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from projections import processing_stats as ps
from projections.event_log import Positioned
from projections.processing_stats import COUNTERS, CaseFacts, Tally
from projections.projector import Replayer
from projections.tables import Row, Table

MONTHLY = Table(
    name="stats_monthly",
    columns=(
        ("category", "text NOT NULL"),
        ("month", "text NOT NULL"),
        *((name, "bigint NOT NULL") for name in COUNTERS),
    ),
    key=("category", "month"),
)
DURATIONS = Table(
    name="stats_durations",
    columns=(
        ("category", "text NOT NULL"),
        ("month", "text NOT NULL"),
        ("days", "integer NOT NULL"),
        ("count", "bigint NOT NULL"),
    ),
    key=("category", "month", "days"),
)
CASES = Table(
    name="stats_cases",
    columns=(
        ("case_id", "uuid NOT NULL"),
        ("category", "text NOT NULL"),
        ("month", "text NOT NULL"),
        ("received_on", "date NOT NULL"),
        ("closed", "boolean NOT NULL"),
    ),
    key=("case_id",),
    indexes=(("category", "closed"),),
)


def _case_row(case_id: UUID, facts: CaseFacts) -> Row:
    return (case_id, facts.category, facts.month, facts.received_on, facts.closed)


class ProcessingStatsReplayer:
    """Keeps the whole tally in memory (small: categories x months x days)."""

    def __init__(self) -> None:
        self.tally = Tally()

    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        facts: CaseFacts | None = None
        for p in events:
            facts = ps.step(facts, p.event, self.tally)
        if facts is not None:
            yield CASES.name, _case_row(events[0].case_id, facts)

    def finish(self) -> Iterable[tuple[str, Row]]:
        yield from ((MONTHLY.name, row) for row in self.tally.monthly_rows())
        yield from ((DURATIONS.name, row) for row in self.tally.duration_rows())

    def absorb(self, other: Replayer) -> None:
        assert isinstance(other, ProcessingStatsReplayer)
        self.tally.absorb(other.tally)


def _upsert(
    table: Table, ident: Composed, add: tuple[str, ...], replace: tuple[str, ...]
) -> Composed:
    """INSERT ... ON CONFLICT: ``add`` columns get the delta, ``replace`` columns the value."""
    sets = [SQL("{c} = t.{c} + EXCLUDED.{c}").format(c=Identifier(c)) for c in add]
    sets += [SQL("{c} = EXCLUDED.{c}").format(c=Identifier(c)) for c in replace]
    return SQL("INSERT INTO {} AS t ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}").format(
        ident,
        SQL(", ").join(map(Identifier, table.column_names)),
        SQL(", ").join(SQL("%s") for _ in table.columns),
        SQL(", ").join(map(Identifier, table.key)),
        SQL(", ").join(sets),
    )


class ProcessingStatsProjection:
    name = "processing_stats"
    tables: tuple[Table, ...] = (MONTHLY, DURATIONS, CASES)

    def replayer(self) -> ProcessingStatsReplayer:
        return ProcessingStatsReplayer()

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        curs.execute(
            SQL(
                "SELECT case_id, category, month, received_on, closed FROM {}"
                " WHERE case_id = ANY(%b)"
            ).format(tables[CASES.name]),
            (list({p.case_id for p in page}),),
        )
        before = {
            r["case_id"]: CaseFacts(r["category"], r["month"], r["received_on"], r["closed"])
            for r in curs.fetchall()
        }
        facts: dict[UUID, CaseFacts | None] = dict(before)
        tally = Tally()
        for p in page:
            facts[p.case_id] = ps.step(facts.get(p.case_id), p.event, tally)
        changed = [
            _case_row(case_id, f)
            for case_id, f in facts.items()
            if f is not None and before.get(case_id) != f
        ]
        writes = (
            (CASES, (), ("category", "month", "received_on", "closed"), changed),
            (MONTHLY, COUNTERS, (), tally.monthly_rows()),
            (DURATIONS, ("count",), (), tally.duration_rows()),
        )
        for table, add, replace, rows in writes:
            if rows:
                curs.executemany(_upsert(table, tables[table.name], add, replace), rows)


# ---------------------------------------------------------------- reads


def _durations(
    curs: Cursor[DictRow], schema: str, category: str, months: list[str] | None = None
) -> dict[str, dict[int, int]]:
    """Day histograms per month for ``category`` (only ``months`` when given)."""
    query = SQL("SELECT month, days, count FROM {} WHERE category = %s").format(
        DURATIONS.ident(schema)
    )
    params: list[Any] = [category]
    if months is not None:
        query += SQL(" AND month = ANY(%b)")
        params.append(months)
    curs.execute(query, params)
    found: dict[str, dict[int, int]] = {}
    for r in curs.fetchall():
        found.setdefault(r["month"], {})[r["days"]] = r["count"]
    return found


def category_stats(curs: Cursor[DictRow], schema: str, category: str) -> list[dict[str, Any]]:
    """Per month received: counters, median/p80/p90 days and share within the standard."""
    curs.execute(
        SQL("SELECT {} FROM {} WHERE category = %s ORDER BY month").format(
            SQL(", ").join(map(Identifier, ("month", *COUNTERS))), MONTHLY.ident(schema)
        ),
        (category,),
    )
    monthly = [dict(r) for r in curs.fetchall()]
    durations = _durations(curs, schema, category)
    return [{**m, **ps.summary(durations.get(m["month"], {}))} for m in monthly]


def backlog(curs: Cursor[DictRow], schema: str, category: str, today: date) -> dict[str, int]:
    """Open cases of ``category`` per age band (months since received) as of ``today``."""
    curs.execute(
        SQL(
            "SELECT received_on, count(*) AS n FROM {} WHERE category = %s AND NOT closed"
            " GROUP BY received_on"
        ).format(CASES.ident(schema)),
        (category,),
    )
    return ps.backlog({r["received_on"]: r["n"] for r in curs.fetchall()}, today)


def estimate(
    curs: Cursor[DictRow], schema: str, category: str, received_on: date, today: date
) -> dict[str, Any]:
    """The estimate for an open case received on ``received_on`` (see processing_stats).

    ``similar_open`` counts the quarter's open cases of the category (this one
    included): next to ``similar_decided`` it shows how settled the figure is.
    """
    months = list(ps.quarter_months(received_on))
    histogram = ps.merge(_durations(curs, schema, category, months).values())
    curs.execute(
        SQL(
            "SELECT coalesce(sum(open), 0) AS open FROM {} WHERE category = %s AND month = ANY(%b)"
        ).format(MONTHLY.ident(schema)),
        (category, months),
    )
    row = curs.fetchone()
    found = ps.estimate(histogram)
    return {
        "category": category,
        "quarter": f"{received_on.year}-Q{(received_on.month - 1) // 3 + 1}",
        "enough_data": found is not None,
        "similar_decided": sum(histogram.values()),
        "similar_open": int(row["open"]) if row else 0,
        "months": found.months if found else None,
        "percent": found.percent if found else None,
        "months_elapsed": ps.months_between(received_on, today),
        "text_en": ps.sentence(found, category, received_on, "en"),
        "text_fr": ps.sentence(found, category, received_on, "fr"),
    }

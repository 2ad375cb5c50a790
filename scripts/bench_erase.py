"""Erasure time: `casetrack privacy erase` of one person, in a small log and a large one.

Fills (or reuses) two schemas with the generated family-class log, --small-cases and
--cases cases (about 13.8 events each: the large one is about 1,000,000 events), projects
them, then erases --people people one at a time in each (adapters.privacy.erasure.erase,
what the command runs: read the person's files, destroy their keys, drop dead letters
that mention them, disable their accounts, append personal_data.erased). Prints the
median and the worst per log, and the ratio large/small: crypto-shredding touches only
the person's own rows, so it should not grow with the log. For scale, in the same run,
what any erasure that rewrites the log would pay first: one scan of the large events
table for the person's UCI. The last line is JSON.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass

from bench_projection import ensure_events
from psycopg.sql import SQL, Identifier

from adapters import bootstrap, logs
from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from adapters.privacy.erasure import erase
from adapters.settings import Settings
from projections.projector import Projector
from projections.registry import select


def erase_times(url: str, schema: str, people: int) -> tuple[list[float], list[str]]:
    """Seconds to erase each of ``people`` principal applicants not erased yet."""
    store = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
    try:
        for projection in select(None):
            Projector(store, projection).catch_up()
        with store.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT c.case_id FROM {s}.privacy_subjects c JOIN {s}.data_keys k"
                    " USING (subject_id) WHERE c.role = 'principal_applicant'"
                    " AND k.wrapped IS NOT NULL ORDER BY c.subject_id LIMIT %s"
                ).format(s=Identifier(schema)),
                (people,),
            )
            cases = [r["case_id"] for r in curs.fetchall()]
        ucis = [store.load([c])[c].principal_applicant.uci for c in cases]  # type: ignore[union-attr]
        times = []
        for uci in ucis:
            started = time.perf_counter()
            report = erase(store, people=[uci], reason="request", requested_by="bench")
            times.append(time.perf_counter() - started)
            assert report.keys_destroyed >= 1 and report.events_appended >= 1
        return times, ucis
    finally:
        store.close()


def scan_seconds(url: str, schema: str, uci: str) -> float:
    """One pass over the events table looking for a UCI in the payloads."""
    store = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
    try:
        started = time.perf_counter()
        with store.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT count(*) AS n FROM {}.{} WHERE position(%s IN state) > 0").format(
                    Identifier(schema), Identifier(EVENTS_TABLE)
                ),
                (uci.encode(),),
            )
        return time.perf_counter() - started
    finally:
        store.close()


@dataclass
class Run:
    events: int
    seconds: list[float]
    schema: str
    uci: str

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=72_000)
    parser.add_argument("--small-cases", type=int, default=1_000)
    parser.add_argument("--people", type=int, default=7)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    logs.configure("warning")
    url = bootstrap.database_url(Settings.from_env())

    runs: dict[str, Run] = {}
    for label, cases in (("small", args.small_cases), ("large", args.cases)):
        schema = f"bench_erase_{cases}_{args.seed}"
        events = ensure_events(url, schema, cases, args.seed)
        times, ucis = erase_times(url, schema, args.people)
        run = runs[label] = Run(events, times, schema, ucis[0])
        print(
            f"{label}: {events:,} events; erase of one person: median {run.median_ms:.0f} ms,"
            f" worst {max(times) * 1000:.0f} ms ({len(times)} people)",
            flush=True,
        )
    large, small = runs["large"], runs["small"]
    ratio = large.median_ms / small.median_ms
    scan = scan_seconds(url, large.schema, large.uci)
    print(
        f"large log / small log ({large.events:,} / {small.events:,} events):"
        f" ratio {ratio:.2f}; a single scan of the large log for one UCI (what a rewrite"
        f" pays first): {scan * 1000:.0f} ms"
    )
    print(json.dumps({
        "benchmark": "erase",
        "large_events": large.events, "small_events": small.events,
        "large_median_ms": round(large.median_ms, 1),
        "large_worst_ms": round(max(large.seconds) * 1000, 1),
        "small_median_ms": round(small.median_ms, 1),
        "ratio_large_to_small": round(ratio, 3),
        "baseline_scan_ms": round(scan * 1000, 1),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

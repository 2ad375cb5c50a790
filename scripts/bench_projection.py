"""Projection rebuild throughput against eventsourcing's stock ProjectionRunner.

Fills a schema with about 1,000,000 case events (about 100,000 cases; kept
between runs and reused when its event count matches), then in a child
process rebuilds case_status, case_history and processing_stats together
(`casetrack projections rebuild`: one pass split over a worker process per
core, bulk copy, check, swap) and reports events/s and the peak RSS of the
rebuild process and its workers together. In the same run, the baseline:
eventsourcing's ProjectionRunner maintaining an equivalent case_status table
(one event per transaction: read the row, fold, upsert, track) over the
first --baseline-events events of the same log. The last line is JSON.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from children import CASETRACK, ROOT, child_env
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from psycopg.sql import SQL, Identifier
from psycopg.types.json import Jsonb

from adapters import bootstrap, logs
from adapters.postgres.data_keys import DataKeys
from adapters.postgres.event_store import EVENTS_TABLE, CaseEvents, CaseStore, postgres_env
from adapters.postgres.schema import init_schema
from adapters.privacy.personal_codec import PersonalDataCodec
from adapters.settings import Settings
from consumers.file_ingest import ingest_lines
from projections import case_status
from simulation import casegen

# ---------------------------------------------------------------- baseline


class BaselineStatusView(PostgresTrackingRecorder):
    """A case_status table kept with the library's tracking, one event per transaction."""

    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {}.baseline_case_status"
                    " (case_id uuid PRIMARY KEY, view jsonb NOT NULL)"
                ).format(Identifier(self.datastore.schema))
            )

    def apply(self, case_id: UUID, event: Any, tracking: Tracking) -> None:
        table = SQL("{}.baseline_case_status").format(Identifier(self.datastore.schema))
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("SELECT view FROM {} WHERE case_id = %s").format(table), (case_id,))
            row = curs.fetchone()
            view = case_status.evolve(row["view"] if row else None, event)
            curs.execute(
                SQL(
                    "INSERT INTO {} (case_id, view) VALUES (%s, %s)"
                    " ON CONFLICT (case_id) DO UPDATE SET view = EXCLUDED.view"
                ).format(table),
                (case_id, Jsonb(view)),
            )
            self._insert_tracking(curs, tracking)


class BaselineStatusProjection(Projection[BaselineStatusView]):
    name = "baseline_status"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(domain_event.originator_id, domain_event, tracking)


class BaselineCaseEvents(CaseEvents):
    """The application the library's runner builds, opening sealed values as ours does."""

    def __init__(self, env: Any = None) -> None:
        super().__init__(env=env)
        vault = bootstrap.vault(Settings.from_env())
        self.data_keys = DataKeys(self.recorder.datastore.schema, vault.kek)  # type: ignore[attr-defined]
        self.mapper.personal = PersonalDataCodec(self.load_keys)


def baseline(url: str, schema: str, events: int) -> tuple[int, float]:
    env = {**postgres_env(url, schema), "CREATE_TABLE": "y"}
    store = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
    _drop_baseline(store)
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(
            SQL(
                "SELECT notification_id FROM {}.{} ORDER BY notification_id OFFSET %s LIMIT 1"
            ).format(Identifier(schema), Identifier(EVENTS_TABLE)),
            (events - 1,),
        )
        row = curs.fetchone()
        assert row is not None, f"fewer than {events} events stored"
        last = int(row["notification_id"])
    store.close()
    started = time.perf_counter()
    with ProjectionRunner(
        application_class=BaselineCaseEvents,
        projection_class=BaselineStatusProjection,
        view_class=BaselineStatusView,
        env=env,
    ) as runner:
        runner.wait(last, timeout=3600)
    elapsed = time.perf_counter() - started
    cleanup = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
    _drop_baseline(cleanup)
    cleanup.close()
    return events, elapsed


def _drop_baseline(store: CaseStore) -> None:
    with store.datastore.transaction(commit=True) as curs:
        for table in ("baseline_case_status", "baseline_status_tracking"):
            curs.execute(
                SQL("DROP TABLE IF EXISTS {}.{}").format(
                    Identifier(store.schema), Identifier(table)
                )
            )


# ---------------------------------------------------------------- data


def ensure_events(url: str, schema: str, cases: int, seed: int) -> int:
    init_schema(url, schema)
    store = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
    try:
        head = store.recorder.max_notification_id() or 0
        if head:
            print(f"reusing schema {schema} with {head:,} events")
            return head
        print(f"filling schema {schema} with events of {cases:,} cases...", flush=True)
        started = time.perf_counter()
        chunk = 10_000  # cases per generated chunk, to bound memory
        for first in range(0, cases, chunk):
            lines = casegen.generate(min(chunk, cases - first), seed=seed + first)
            ingest_lines(
                [(line + "\n").encode() for line in lines], f"bench:{first}", store, batch_size=5000
            )
        head = store.recorder.max_notification_id() or 0
        print(f"  {head:,} events stored in {time.perf_counter() - started:.0f}s")
        return head
    finally:
        store.close()


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += map(int, (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=72_000, help="about 13.8 events each")
    parser.add_argument("--baseline-events", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logs.configure("error")

    url = bootstrap.database_url(Settings.from_env())
    schema = f"bench_projection_{args.cases}_{args.seed}"
    events = ensure_events(url, schema, args.cases, args.seed)

    rebuild = ["projections", "rebuild", "case_status", "case_history", "processing_stats"]
    started = time.perf_counter()
    child = subprocess.Popen(
        [*CASETRACK, *rebuild],
        env=child_env(url, schema),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak_rss_mb = 0.0
    while child.poll() is None:
        peak_rss_mb = max(peak_rss_mb, tree_rss_mb(child.pid))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        print(stderr, file=sys.stderr)
        return 1
    print(stdout.strip())
    print(
        f"rebuild of 3 projections: {events:,} events in {elapsed:.1f}s ="
        f" {events / elapsed:,.0f} events/s, peak RSS {peak_rss_mb:.0f} MB (the rebuild"
        " process and its workers together, sampled every 50 ms; start-up included)"
    )
    rate = events / elapsed

    base_events, base_elapsed = baseline(url, schema, min(args.baseline_events, events))
    base_rate = base_events / base_elapsed
    print(
        f"baseline: eventsourcing ProjectionRunner, case_status only, {base_events:,} events"
        f" in {base_elapsed:.1f}s = {base_rate:,.0f} events/s"
    )
    ratio = rate / base_rate
    print(f"ratio: {ratio:.1f}x (ours maintains three views, the baseline one)")
    print(
        json.dumps(
            {
                "events": events,
                "events_per_s": round(rate, 1),
                "baseline_events_per_s": round(base_rate, 1),
                "ratio": round(ratio, 2),
                "peak_rss_mb": round(peak_rss_mb, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

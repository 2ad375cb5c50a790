"""Ingest throughput: `casetrack ingest` against one eventsourcing save per event.

Generates a realistic file (default 100,000 events, about 10,000 cases), times
`casetrack ingest FILE` end to end in a subprocess (start-up, validation,
batched appends, dead letters), then in the same run a
baseline on the same file's first --baseline-events lines: parse, load the case
from the repository, apply, ``app.save`` -- one transaction per event. Each
side writes into a fresh schema. The last line is JSON.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import time

import naive
from children import CASETRACK, ROOT, child_env

from adapters import bootstrap
from adapters.postgres.event_store import CaseStore
from adapters.postgres.schema import drop_schema, init_schema
from adapters.settings import Settings
from simulation import casegen


def baseline(url: str, schema: str, lines: list[str]) -> tuple[int, float]:
    """One repository get and one save (one transaction) per event."""
    store = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
    started = time.perf_counter()
    stored = sum(naive.save_one(store.app, line) for line in lines)
    elapsed = time.perf_counter() - started
    store.close()
    return stored, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--baseline-events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    url = bootstrap.database_url(Settings.from_env())
    cases = max(args.events // 10, 1)
    t0 = time.perf_counter()
    lines = casegen.generate(cases, seed=args.seed, duplicate_share=0.01, invalid_share=0.001)
    lines = lines[: args.events]
    path = ROOT / ".bench" / "ingest.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"generated {len(lines)} lines for {cases} cases in {time.perf_counter() - t0:.1f}s")

    schema = f"bench_{secrets.token_hex(4)}"
    base_schema = f"bench_{secrets.token_hex(4)}"
    init_schema(url, schema)
    init_schema(url, base_schema)
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [*CASETRACK, "ingest", str(path), "--json"],
            env=child_env(url, schema),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        elapsed = time.perf_counter() - started
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        rate = len(lines) / elapsed
        print(
            f"casetrack ingest: {len(lines)} lines in {elapsed:.1f}s = {rate:,.0f} events/s"
            f" (accepted {summary['accepted']}, duplicates {summary['duplicates']},"
            f" rejected {summary['rejected']}; start-up included)"
        )

        base_lines = lines[: args.baseline_events]
        stored, base_elapsed = baseline(url, base_schema, base_lines)
        base_rate = len(base_lines) / base_elapsed
        print(
            f"baseline (one eventsourcing save per event): {len(base_lines)} lines"
            f" ({stored} saved) in {base_elapsed:.1f}s = {base_rate:,.0f} events/s"
        )
        ratio = rate / base_rate
        print(f"ratio: {ratio:.1f}x")
    finally:
        drop_schema(url, schema)
        drop_schema(url, base_schema)
    naive.report(len(lines), rate, base_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What hashing every event costs the writer: `casetrack ingest` of this tree against the
same command of a revision without the hashes, on the same file, in the same run.

Makes a detached git worktree of --baseline-rev (default: the commit before event_hashes
was written), then ingests one generated file with each tree in turn, --rounds times each,
every run into a fresh schema that each tree's own `db init` made. Prints every run, the
median of each side and their ratio; the last line is JSON. Run it on a quiet machine:
the two sides alternate, so drift hits both, but other load still adds noise.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from children import CASETRACK, ROOT, child_env

from adapters import bootstrap
from adapters.postgres.schema import drop_schema
from adapters.settings import Settings
from simulation import casegen

BEFORE_HASHES = "c16a595"


def ingest(tree: Path, url: str, path: Path) -> float:
    """Events a second of `casetrack ingest` run from ``tree`` into a fresh schema."""
    schema = f"bench_{secrets.token_hex(4)}"
    env = child_env(url, schema)
    env["PYTHONPATH"] = str(tree)
    try:
        subprocess.run([*CASETRACK, "db", "init"], env=env, cwd=tree, check=True,
                       capture_output=True)  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(
            [*CASETRACK, "ingest", str(path), "--json"],
            env=env, cwd=tree, capture_output=True, text=True, check=True,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
    finally:
        drop_schema(url, schema)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return (summary["accepted"] + summary["duplicates"] + summary["rejected"]) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-rev", default=BEFORE_HASHES)
    args = parser.parse_args()

    url = bootstrap.database_url(Settings.from_env())
    lines = casegen.generate(max(args.events // 10, 1), seed=1, duplicate_share=0.01)
    lines = lines[: args.events]
    with tempfile.TemporaryDirectory(prefix="casetrack-bench-") as tmp:
        path = Path(tmp) / "ingest.jsonl"
        path.write_text("\n".join(lines) + "\n")
        base_tree = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(base_tree), args.baseline_rev],
            cwd=ROOT, check=True,
        )  # fmt: skip
        try:
            rates: dict[str, list[float]] = {"hashed": [], "baseline": []}
            for round_ in range(args.rounds):
                for side, tree in (("baseline", base_tree), ("hashed", ROOT)):
                    rate = ingest(tree, url, path)
                    rates[side].append(rate)
                    print(f"round {round_ + 1} {side:<8} {rate:8,.0f} events/s")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT)
    hashed = statistics.median(rates["hashed"])
    base = statistics.median(rates["baseline"])
    ratio = hashed / base
    print(
        f"casetrack ingest of {len(lines)} events, median of {args.rounds}: with hashes"
        f" {hashed:,.0f} events/s, baseline {args.baseline_rev} (no hashes) {base:,.0f}"
        f" events/s; ratio {ratio:.3f} ({(1 - ratio) * 100:.1f}% slower)"
    )
    print(json.dumps({
        "benchmark": "chain_overhead", "events": len(lines), "rounds": args.rounds,
        "hashed_events_per_s": round(hashed), "baseline_events_per_s": round(base),
        "baseline_rev": args.baseline_rev, "ratio": round(ratio, 4),
        "runs": {k: [round(r) for r in v] for k, v in rates.items()},
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

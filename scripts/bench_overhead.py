"""What a feature costs: `casetrack ingest`, then `casetrack projections rebuild`, of this
tree against the same commands of an earlier revision, on the same file, in the same run.

--baseline-rev names the revision without the feature: c16a595 for the hash chains
(issue 11), 8a3bb31 for personal-data encryption (issue 12, the default). Makes a
detached git worktree of it, then with each tree in turn, --rounds times each, ingests
one generated file into a fresh schema that the tree's own `db init` made and rebuilds
every view from it. Prints every run, the median of each side and their ratios; the last
line is JSON. Run it on a quiet machine: the two sides alternate, so drift hits both,
but other load still adds noise.

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

BEFORE_ENCRYPTION = "8a3bb31"


def run(tree: Path, url: str, path: Path) -> tuple[float, float]:
    """Events a second of `casetrack ingest`, then of `casetrack projections rebuild`, run
    from ``tree`` into a fresh schema."""
    schema = f"bench_{secrets.token_hex(4)}"
    env = child_env(url, schema)
    env["PYTHONPATH"] = str(tree)

    def casetrack(*args: str) -> tuple[str, float]:
        started = time.perf_counter()
        done = subprocess.run([*CASETRACK, *args], env=env, cwd=tree, capture_output=True,
                              text=True, check=True)  # fmt: skip
        return done.stdout, time.perf_counter() - started

    try:
        casetrack("db", "init")
        out, ingest_seconds = casetrack("ingest", str(path), "--json")
        summary = json.loads(out.strip().splitlines()[-1])
        status, _ = casetrack("projections", "status", "--json")
        names = [view["name"] for view in json.loads(status)]  # every view the tree has
        _, rebuild_seconds = casetrack("projections", "rebuild", *names)
    finally:
        drop_schema(url, schema)
    events = summary["accepted"] + summary["duplicates"] + summary["rejected"]
    return events / ingest_seconds, summary["accepted"] / rebuild_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-rev", default=BEFORE_ENCRYPTION)
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
            rates: dict[str, dict[str, list[float]]] = {
                step: {"this tree": [], "baseline": []} for step in ("ingest", "rebuild")
            }
            for round_ in range(args.rounds):
                for side, tree in (("baseline", base_tree), ("this tree", ROOT)):
                    ingest, rebuild = run(tree, url, path)
                    rates["ingest"][side].append(ingest)
                    rates["rebuild"][side].append(rebuild)
                    print(f"round {round_ + 1} {side:<9} ingest {ingest:8,.0f} events/s,"
                          f" rebuild {rebuild:8,.0f} events/s", flush=True)  # fmt: skip
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT)
    result: dict[str, object] = {
        "benchmark": "overhead", "events": len(lines), "rounds": args.rounds,
        "baseline_rev": args.baseline_rev,
    }  # fmt: skip
    for step, sides in rates.items():
        this, base = statistics.median(sides["this tree"]), statistics.median(sides["baseline"])
        ratio = this / base
        print(
            f"{step} of {len(lines)} events, median of {args.rounds}: this tree {this:,.0f}"
            f" events/s, baseline {args.baseline_rev} {base:,.0f} events/s; ratio"
            f" {ratio:.3f} ({(1 - ratio) * 100:.1f}% slower)"
        )
        result[step] = {
            "events_per_s": round(this), "baseline_events_per_s": round(base),
            "ratio": round(ratio, 4), "runs": {k: [round(r) for r in v] for k, v in sides.items()},
        }  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

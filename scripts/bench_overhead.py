"""What a feature costs: `casetrack ingest`, then `casetrack projections rebuild`, of one
side against a baseline without the feature, on the same file, in the same run.

- `--encryption-off`: this tree against itself with personal-data encryption off
  (scripts/plaintext.py: nothing sealed, no keys made, nothing to open), which is what
  issue 12 asks to compare;
- `--baseline-rev REV`: against an earlier revision (c16a595: before the hash chains of
  issue 11; 8a3bb31, the default: before encryption), in a detached git worktree;
  `--rev REV` puts an earlier revision on the measured side too (8a3bb31 against c16a595
  is what the hash chains alone cost).

With each side in turn, --rounds times each, ingests one generated file into a fresh
schema that the side's own `db init` made and rebuilds every view from it. Prints every
run, the median of each side and their ratios; the last line is JSON. Run it on a quiet
machine: the two sides alternate, so drift hits both, but other load still adds noise.

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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from children import CASETRACK, ROOT, child_env

from adapters import bootstrap
from adapters.postgres.schema import drop_schema
from adapters.settings import Settings
from simulation import casegen

BEFORE_ENCRYPTION = "8a3bb31"


PLAINTEXT = [sys.executable, str(ROOT / "scripts" / "plaintext.py")]


def run(tree: Path, url: str, path: Path, command: list[str]) -> tuple[float, float]:
    """Events a second of `casetrack ingest`, then of `casetrack projections rebuild`, run
    from ``tree`` (as ``command``) into a fresh schema."""
    schema = f"bench_{secrets.token_hex(4)}"
    env = child_env(url, schema)
    env["PYTHONPATH"] = str(tree)

    def casetrack(*args: str) -> tuple[str, float]:
        started = time.perf_counter()
        done = subprocess.run([*command, *args], env=env, cwd=tree, capture_output=True,
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
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument("--baseline-rev", default=BEFORE_ENCRYPTION)
    baseline.add_argument("--encryption-off", action="store_true")
    parser.add_argument("--rev", default=None, help="measure this revision instead of the tree")
    args = parser.parse_args()
    baseline_name = "encryption off" if args.encryption_off else args.baseline_rev
    measured_name = args.rev or "this tree"

    url = bootstrap.database_url(Settings.from_env())
    lines = casegen.generate(max(args.events // 10, 1), seed=1, duplicate_share=0.01)
    lines = lines[: args.events]
    with tempfile.TemporaryDirectory(prefix="casetrack-bench-") as tmp, ExitStack() as trees:
        path = Path(tmp) / "ingest.jsonl"
        path.write_text("\n".join(lines) + "\n")
        measured = (trees.enter_context(_worktree(Path(tmp) / "measured", args.rev))
                    if args.rev else ROOT, CASETRACK)  # fmt: skip
        base = (measured[0], PLAINTEXT) if args.encryption_off else (
            trees.enter_context(_worktree(Path(tmp) / "baseline", args.baseline_rev)), CASETRACK
        )  # fmt: skip
        rates: dict[str, dict[str, list[float]]] = {
            step: {"measured": [], "baseline": []} for step in ("ingest", "rebuild")
        }
        for round_ in range(args.rounds):
            for side, (tree, command) in (("baseline", base), ("measured", measured)):
                ingest, rebuild = run(tree, url, path, command)
                rates["ingest"][side].append(ingest)
                rates["rebuild"][side].append(rebuild)
                name = baseline_name if side == "baseline" else measured_name
                print(f"round {round_ + 1} {name:<14} ingest {ingest:8,.0f} events/s,"
                      f" rebuild {rebuild:8,.0f} events/s", flush=True)  # fmt: skip
    result: dict[str, object] = {
        "benchmark": "overhead", "events": len(lines), "rounds": args.rounds,
        "measured": measured_name, "baseline": baseline_name,
    }  # fmt: skip
    for step, sides in rates.items():
        this, base_rate = statistics.median(sides["measured"]), statistics.median(sides["baseline"])
        ratio = this / base_rate
        print(
            f"{step} of {len(lines)} events, median of {args.rounds}: {measured_name}"
            f" {this:,.0f} events/s, baseline {baseline_name} {base_rate:,.0f} events/s; ratio"
            f" {ratio:.3f} ({(1 - ratio) * 100:.1f}% slower)"
        )
        result[step] = {
            "events_per_s": round(this), "baseline_events_per_s": round(base_rate),
            "ratio": round(ratio, 4), "runs": {k: [round(r) for r in v] for k, v in sides.items()},
        }  # fmt: skip
    print(json.dumps(result))
    return 0


@contextmanager
def _worktree(where: Path, rev: str) -> Iterator[Path]:
    """A detached git worktree of ``rev``, removed afterwards."""
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(where), rev], cwd=ROOT,
                   check=True)  # fmt: skip
    try:
        yield where
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())

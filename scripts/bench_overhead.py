"""What a feature costs: `casetrack ingest`, then `casetrack projections rebuild`, of one
side against a baseline without the feature, on the same file, in the same run.

- `--encryption-off`: this tree against itself with personal-data encryption off
  (scripts/plaintext.py: nothing sealed, no keys made, nothing to open), which is what
  issue 12 asks to compare;
- `--chains-off`: this tree against itself with the hash chains of issue 11 off
  (scripts/chains_off.py: no event_hashes rows), what the chains alone cost today;
- `--baseline-rev REV`: against an earlier revision (c16a595: before the hash chains of
  issue 11; 8a3bb31, the default: before encryption), in a detached git worktree;
  `--rev REV` puts an earlier revision on the measured side too (8a3bb31 against c16a595
  is what the hash chains alone cost).

With each side in turn, --rounds times each, ingests one generated file into a fresh
schema that the side's own `db init` made and rebuilds every read model from it (not the
notifications outbox). Prints every run, the median of each side and their ratios; the
last line is JSON. Run it on a quiet
machine: the two sides alternate, so drift hits both, but other load still adds noise.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from children import CASETRACK, ROOT, child_env

from adapters import bootstrap
from adapters.postgres.schema import drop_schema
from adapters.settings import Settings
from simulation import casegen

BEFORE_ENCRYPTION = "8a3bb31"


PLAINTEXT = [sys.executable, str(ROOT / "scripts" / "plaintext.py")]
CHAINS_OFF = [sys.executable, str(ROOT / "scripts" / "chains_off.py")]


@dataclass
class Run:
    """One side's run: events a second (wall clock, the target's measure) and the CPU
    seconds of casetrack's own processes (steadier on a shared machine; PostgreSQL's
    share is not in it), for the ingest and the rebuild."""

    ingest: float
    rebuild: float
    ingest_cpu: float
    rebuild_cpu: float


def run(tree: Path, url: str, path: Path, command: list[str], rebuild: bool = True) -> Run:
    """`casetrack ingest`, then (unless not ``rebuild``) `casetrack projections rebuild` of
    every view, run from ``tree`` (as ``command``) into a fresh schema."""
    schema = f"bench_{secrets.token_hex(4)}"
    env = child_env(url, schema)
    env["PYTHONPATH"] = str(tree)

    def casetrack(*args: str) -> tuple[str, float, float]:
        cpu = _children_cpu()
        started = time.perf_counter()
        done = subprocess.run([*command, *args], env=env, cwd=tree, capture_output=True,
                              text=True)  # fmt: skip
        if done.returncode != 0:
            sys.stderr.write(done.stderr[-4000:])
            done.check_returncode()
        return done.stdout, time.perf_counter() - started, _children_cpu() - cpu

    try:
        casetrack("db", "init")
        out, ingest_seconds, ingest_cpu = casetrack("ingest", str(path), "--json")
        summary = json.loads(out.strip().splitlines()[-1])
        if not rebuild:
            return Run(summary_rate(summary, ingest_seconds), 0.0, ingest_cpu, 0.0)
        status, _, _ = casetrack("projections", "status", "--json")
        # Every read model the tree has. Not `notifications`: it is an outbox writer, whose
        # rebuild replays only up to its live position (none here: no daemon ran) and
        # applies the rest one page at a time, announcing it; the read models are what
        # a rebuild of one side and the other have in common.
        names = [view["name"] for view in json.loads(status) if view["name"] != "notifications"]
        _, rebuild_seconds, rebuild_cpu = casetrack("projections", "rebuild", *names)
    finally:
        drop_schema(url, schema)
    return Run(
        summary_rate(summary, ingest_seconds), summary["accepted"] / rebuild_seconds,
        ingest_cpu, rebuild_cpu,
    )  # fmt: skip


def summary_rate(summary: dict[str, int], seconds: float) -> float:
    """Events a second of an ingest: every line read, whatever became of it."""
    return (summary["accepted"] + summary["duplicates"] + summary["rejected"]) / seconds


def _children_cpu() -> float:
    """User and system CPU seconds of this process's finished children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument("--baseline-rev", default=BEFORE_ENCRYPTION)
    baseline.add_argument("--encryption-off", action="store_true")
    baseline.add_argument("--chains-off", action="store_true")
    parser.add_argument(
        "--ingest-only", action="store_true", help="no rebuild (what the chains change)"
    )
    parser.add_argument("--rev", default=None, help="measure this revision instead of the tree")
    args = parser.parse_args()
    baseline_name = (
        "encryption off" if args.encryption_off
        else "chains off" if args.chains_off
        else args.baseline_rev
    )  # fmt: skip
    measured_name = args.rev or "this tree"

    url = bootstrap.database_url(Settings.from_env())
    lines = casegen.generate(max(args.events // 10, 1), seed=1, duplicate_share=0.01)
    lines = lines[: args.events]
    with tempfile.TemporaryDirectory(prefix="casetrack-bench-") as tmp, ExitStack() as trees:
        path = Path(tmp) / "ingest.jsonl"
        path.write_text("\n".join(lines) + "\n")
        measured = (trees.enter_context(_worktree(Path(tmp) / "measured", args.rev))
                    if args.rev else ROOT, CASETRACK)  # fmt: skip
        base = (
            (measured[0], PLAINTEXT) if args.encryption_off
            else (measured[0], CHAINS_OFF) if args.chains_off
            else (trees.enter_context(_worktree(Path(tmp) / "baseline", args.baseline_rev)),
                  CASETRACK)
        )  # fmt: skip
        runs: dict[str, list[Run]] = {"measured": [], "baseline": []}
        for round_ in range(args.rounds):
            for side, (tree, command) in (("baseline", base), ("measured", measured)):
                done = run(tree, url, path, command, rebuild=not args.ingest_only)
                runs[side].append(done)
                name = baseline_name if side == "baseline" else measured_name
                print(f"round {round_ + 1} {name:<14} ingest {done.ingest:8,.0f} events/s"
                      f" ({done.ingest_cpu:5.1f} s CPU), rebuild {done.rebuild:8,.0f} events/s"
                      f" ({done.rebuild_cpu:5.1f} s CPU)", flush=True)  # fmt: skip
    result: dict[str, object] = {
        "benchmark": "overhead", "events": len(lines), "rounds": args.rounds,
        "measured": measured_name, "baseline": baseline_name,
    }  # fmt: skip
    for step in ("ingest",) if args.ingest_only else ("ingest", "rebuild"):
        this = [getattr(r, step) for r in runs["measured"]]
        base_rates = [getattr(r, step) for r in runs["baseline"]]
        ratio = statistics.median(this) / statistics.median(base_rates)
        paired = statistics.median(m / b for m, b in zip(this, base_rates, strict=True))
        cpu = statistics.median(getattr(r, f"{step}_cpu") for r in runs["measured"])
        base_cpu = statistics.median(getattr(r, f"{step}_cpu") for r in runs["baseline"])
        print(
            f"{step} of {len(lines)} events, median of {args.rounds}: {measured_name}"
            f" {statistics.median(this):,.0f} events/s, baseline {baseline_name}"
            f" {statistics.median(base_rates):,.0f} events/s; ratio {ratio:.3f}"
            f" ({(1 - ratio) * 100:.1f}% slower); median of the rounds' ratios {paired:.3f};"
            f" casetrack's CPU {cpu:.1f} s vs {base_cpu:.1f} s ({(cpu / base_cpu - 1) * 100:+.1f}%)"
        )
        result[step] = {
            "events_per_s": round(statistics.median(this)),
            "baseline_events_per_s": round(statistics.median(base_rates)),
            "ratio": round(ratio, 4), "median_round_ratio": round(paired, 4),
            "cpu_s": round(cpu, 2), "baseline_cpu_s": round(base_cpu, 2),
            "runs": {"measured": [round(r) for r in this],
                     "baseline": [round(r) for r in base_rates]},
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

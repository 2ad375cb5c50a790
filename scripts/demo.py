"""`make run`: casetrack's main job on embedded defaults, narrated for a newcomer.

Creates the schema, ingests the bundled sample of case events, and prints a
few cases the way the tracker shows them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("CASETRACK_LOG_LEVEL", "error")

from adapters import database_url  # noqa: E402
from adapters.cli.main import main as casetrack  # noqa: E402

SAMPLE = ROOT / "samples" / "events.jsonl"


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def pick_cases() -> list[tuple[str, str]]:
    """An approved case, an open case with next steps, and a French-speaking one."""
    events = []
    for line in SAMPLE.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    by_case: dict[str, list[dict]] = {}
    for e in events:
        if isinstance(e, dict) and isinstance(e.get("application_number"), str):
            by_case.setdefault(e["application_number"], []).append(e)
    types = {n: {e.get("type") for e in evs} for n, evs in by_case.items()}
    approved = next(n for n, ts in types.items() if "copr.issued" in ts)
    open_ = next(
        n for n, ts in types.items() if "decision.made" not in ts and "biometrics.requested" in ts
    )
    french = next(
        n
        for n, evs in by_case.items()
        if any(e.get("payload", {}).get("preferred_language") == "fr" for e in evs)
    )
    return [(approved, "en"), (open_, "en"), (french, "fr")]


def run() -> int:
    where = (
        os.environ.get(database_url.DATABASE_URL) or f"embedded PostgreSQL in {database_url.home()}"
    )
    step(f"1. Database: {where}")
    if casetrack(["db", "init"]):
        return 1
    step(f"2. Ingesting {SAMPLE.relative_to(ROOT)} (a run again makes every line a duplicate)")
    if casetrack(["ingest", str(SAMPLE)]):
        return 1
    for number, lang in pick_cases():
        step(f"3. casetrack status {number} --lang {lang}")
        casetrack(["status", number, "--lang", lang])
    number = pick_cases()[0][0]
    step(f"4. casetrack history {number}  (the audit trail)")
    casetrack(["history", number])
    step("5. What to try next")
    print(
        "  .venv/bin/casetrack dead-letters list          # what was rejected, and why\n"
        f"  .venv/bin/casetrack status {number} --json    # the view as JSON\n"
        f"  .venv/bin/casetrack history {number} --as-of-version 3\n"
        "  python scripts/casegen.py --cases 1000 > /tmp/events.jsonl &&"
        " .venv/bin/casetrack ingest /tmp/events.jsonl\n"
        "  .venv/bin/casetrack db stop                    # stop the embedded PostgreSQL\n"
        "  make test                                      # every test"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run())

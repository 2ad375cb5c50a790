"""Kill `casetrack ingest` with SIGKILL mid-file, rerun it: same state as one clean run."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from psycopg.sql import SQL, Identifier

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from adapters.postgres.schema import drop_schema, init_schema
from consumers.file_ingest import ingest_lines
from simulation import casegen
from tests.integration.test_ingest import _count

CASETRACK = [sys.executable, "-m", "adapters.cli.main"]


def _snapshot(store: CaseStore) -> dict[str, Any]:
    """Everything a rerun must reproduce, without timestamps that differ between runs."""
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(
            SQL(
                "SELECT originator_id, originator_version, topic FROM {}.{}"
                " ORDER BY originator_id, originator_version"
            ).format(Identifier(store.schema), Identifier(EVENTS_TABLE))
        )
        events = [tuple(r.values()) for r in curs.fetchall()]
        curs.execute(
            SQL(
                "SELECT position, error_kind, rule, field FROM {}.dead_letters ORDER BY position"
            ).format(Identifier(store.schema))
        )
        dead = [tuple(r.values()) for r in curs.fetchall()]
        curs.execute(
            SQL(
                "SELECT application_number, view FROM {}.case_status ORDER BY application_number"
            ).format(Identifier(store.schema))
        )
        views = [
            (
                r["application_number"],
                {k: v for k, v in r["view"].items() if not k.endswith("last_updated")},
            )
            for r in curs.fetchall()
        ]
    ids = {case_id: [e for e in store.stored_events(case_id)] for case_id, *_ in events}
    event_ids = {str(k): [str(e.event_id) for e in v] for k, v in ids.items()}
    return {"events": events, "event_ids": event_ids, "dead": dead, "views": views}


def test_sigkill_at_any_moment_then_rerun(
    database_url: str, schema: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    lines = casegen.generate(400, seed=8, duplicate_share=0.03, invalid_share=0.02)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    store = CaseStore(database_url, schema)
    args = [*CASETRACK, "ingest", str(path), "--batch-size", "40", "--origin", "file:events"]
    cwd = Path(__file__).resolve().parents[2]
    try:
        for threshold in (1, len(lines) // 4, len(lines) // 2):
            proc = subprocess.Popen(
                args, env=cli_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 60
            while _count(store, EVENTS_TABLE) < threshold and proc.poll() is None:
                assert time.monotonic() < deadline, "ingest made no progress"
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        done = subprocess.run(args, env=cli_env, cwd=cwd, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        from projections.case_status_table import CaseStatusProjection
        from projections.projector import Projector

        Projector(store, CaseStatusProjection()).catch_up()
        after_kills = _snapshot(store)
    finally:
        store.close()

    reference_schema = f"t_{secrets.token_hex(6)}"
    init_schema(database_url, reference_schema)
    reference = CaseStore(database_url, reference_schema)
    try:
        with path.open("rb") as f:
            ingest_lines(f, "file:events", reference, batch_size=1000)
        from projections.case_status_table import CaseStatusProjection
        from projections.projector import Projector

        Projector(reference, CaseStatusProjection()).catch_up()
        clean = _snapshot(reference)
    finally:
        reference.close()
        drop_schema(database_url, reference_schema)

    assert after_kills["event_ids"] == clean["event_ids"]
    assert after_kills["events"] == clean["events"]
    assert after_kills["dead"] == clean["dead"]
    assert after_kills["views"] == clean["views"]

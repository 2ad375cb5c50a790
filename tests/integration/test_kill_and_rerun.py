"""Kill `casetrack ingest` with SIGKILL mid-file, rerun it: same state as one clean run,
and every event hashed exactly once (no event without its chain link, none twice)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from consumers.file_ingest import ingest_lines
from simulation import casegen
from tests import cli_process
from tests.integration.hashes import assert_hashes_intact
from tests.integration.snapshots import project, snapshot
from tests.stores import count, scratch_store
from tests.vault import TEST_VAULT


def test_sigkill_at_any_moment_then_rerun(
    database_url: str, schema: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    lines = casegen.generate(400, seed=8, duplicate_share=0.03, invalid_share=0.02)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    store = CaseStore(database_url, schema, TEST_VAULT)
    args = ["ingest", str(path), "--batch-size", "40", "--origin", "file:events"]
    try:
        for threshold in (1, len(lines) // 4, len(lines) // 2):
            with cli_process.running(args, cli_env, stderr=subprocess.DEVNULL) as proc:
                deadline = time.monotonic() + 60
                while count(store, EVENTS_TABLE) < threshold and proc.poll() is None:
                    assert time.monotonic() < deadline, "ingest made no progress"
                    time.sleep(0.005)
                proc.kill()  # SIGKILL
                proc.wait()
        done = cli_process.run(args, cli_env, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert_hashes_intact(store)
        project(store)
        after_kills = snapshot(store)
    finally:
        store.close()

    with scratch_store(database_url) as reference:
        with path.open("rb") as f:
            ingest_lines(f, "file:events", reference, batch_size=1000)
        project(reference)
        clean = snapshot(reference)

    assert after_kills["event_ids"] == clean["event_ids"]
    assert after_kills["events"] == clean["events"]
    assert after_kills["dead"] == clean["dead"]
    assert after_kills["views"] == clean["views"]

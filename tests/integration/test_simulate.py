"""scripts/simulate.py at a tiny scale, so that it cannot rot: the real embedded broker,
PostgreSQL and the six casetrack processes, a few hundred events in about three seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli_process import ROOT
from tests.vault import vault_env


def test_a_tiny_replay_runs_the_whole_pipeline_and_reports(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **vault_env(),
        "CASETRACK_DATABASE_URL": database_url,
        "CASETRACK_HOME": str(tmp_path),
        "CASETRACK_CHECKPOINT_SECONDS": "0",
    }
    done = subprocess.run(
        [sys.executable, "scripts/simulate.py", "--years", "0.5", "--scale", "0.0005",
         "--speedup", "5e6", "--session-timeout-ms", "3000", "--max-poll-interval-ms", "6000"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["events"] > 100
    assert result["cases"] > 10
    assert result["errors"] == 0
    assert set(result["exits"].values()) == {0}, result["exits"]  # SIGTERM: a clean exit 0
    assert result["dead_letters"] == 0
    assert result["caught_up_s"] is not None
    assert result["reads"] > 0 and result["reads_not_2xx"] == 0
    assert set(result["peak_rss_mb"]) == {
        "consume-1", "consume-2", "project-1", "project-2", "serve-1", "serve-2"
    }  # fmt: skip
    assert result["schema_bytes"] > 0 and result["bytes_per_event"] > 0

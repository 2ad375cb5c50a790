"""With no CASETRACK_DATABASE_URL, commands start and share an embedded PostgreSQL."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.integration.test_cli import ROOT, casetrack


def test_commands_run_on_the_embedded_server(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CASETRACK_DATABASE_URL", "CASETRACK_SCHEMA")
    }
    env["CASETRACK_HOME"] = str(tmp_path / "home")
    env["CASETRACK_LOG_LEVEL"] = "error"
    try:
        assert casetrack(env, "db", "init").returncode == 0
        assert casetrack(env, "db", "init").returncode == 0  # idempotent
        done = casetrack(env, "ingest", str(ROOT / "samples" / "events.jsonl"), "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1])["accepted"] > 0
        assert casetrack(env, "project", "--once").returncode == 0
        first = next(
            json.loads(line)
            for line in (ROOT / "samples" / "events.jsonl").open()
            if line.startswith("{") and '"application.received"' in line
        )
        status = casetrack(env, "status", first["application_number"], "--json")
        assert status.returncode == 0, status.stderr
        assert (tmp_path / "home" / "pgdata" / "PG_VERSION").exists()
    finally:
        stopped = casetrack(env, "db", "stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout

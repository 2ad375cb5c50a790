"""`casetrack` as a child process of a benchmark: started from the repository root, on
the database and schema being measured."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from adapters.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CASETRACK = [sys.executable, "-m", "adapters.cli.main"]


def child_env(url: str, schema: str, log_level: str = "error") -> dict[str, str]:
    """This process's environment, pointing `casetrack` at ``url`` and ``schema``."""
    return {
        **os.environ,
        # The same home as this process: the same KEK and server secret (adapters.privacy).
        "CASETRACK_HOME": str(Settings.from_env().home),
        "CASETRACK_DATABASE_URL": url,
        "CASETRACK_SCHEMA": schema,
        "CASETRACK_LOG_LEVEL": log_level,
    }

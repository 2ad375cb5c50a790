"""The published JSON Schema must be what the pydantic contract generates."""

import json
import subprocess
import sys
from pathlib import Path

from domain.catalogue import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "case-event.schema.json"


def test_published_schema_is_current() -> None:
    check = subprocess.run(
        [sys.executable, "scripts/export_schema.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr or check.stdout


def test_schema_lists_every_event_type() -> None:
    schema = json.loads(PUBLISHED.read_text())
    tags = set(schema["discriminator"]["mapping"])
    assert tags == set(EVENT_TYPES)

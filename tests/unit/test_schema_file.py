"""The published JSON Schema must be what the pydantic contract generates."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import export_schema  # noqa: E402


def test_published_schema_is_current() -> None:
    assert export_schema.TARGET.read_text() == export_schema.render(), (
        "docs/case-event.schema.json is stale: run `make schema`"
    )


def test_schema_lists_every_event_type() -> None:
    from domain.catalogue import EVENT_TYPES

    schema = json.loads(export_schema.TARGET.read_text())
    tags = set(schema["discriminator"]["mapping"])
    assert tags == set(EVENT_TYPES)

"""docs/openapi.json is the API as served: regenerate it when this fails."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.http.app import openapi_document

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_document_is_current() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == openapi_document(), (
        "docs/openapi.json is stale: run `python scripts/export_openapi.py`"
    )


def test_every_error_answer_is_documented_as_problem_json() -> None:
    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    content = answer.get("content", {})
                    assert list(content) == ["application/problem+json"], (method, path, status)

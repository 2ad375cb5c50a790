"""domain.integrity.stored: payloads nested too deeply give the same leaf whichever parser
reads them (orjson where installed, the standard library on an auditor's machine)."""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from domain.integrity import stored
from domain.integrity.stored import StoredRow, column_leaf, hash_events, leaf_record

CASE = UUID("0b7c6c7e-4a51-4a8e-9a0c-2f1d8f0b7c11")


def nested(levels: int) -> bytes:
    """A payload whose fields are readable but which holds `levels` levels of nesting in
    all (a bracket inside a string counts for nothing)."""
    inner = b'{"b": "[[{{", "c": ' * (levels - 2) + b"[]" + b"}" * (levels - 2)
    return b'{"source": "kafka:x", "a": ' + inner + b"}"


@pytest.mark.parametrize(
    ("levels", "readable"), [(990, True), (1000, True), (1024, True), (1025, False), (10**5, False)]
)
def test_nesting_deeper_than_1024_levels_is_unparsable_for_either_parser(
    monkeypatch: pytest.MonkeyPatch, levels: int, readable: bool
) -> None:
    """orjson reads up to 1024 levels and refuses more; the standard library's parser runs
    out of stack (RecursionError) somewhat below 1000, depending on the caller: it follows
    orjson's rule, so the leaves are the same on every machine."""
    row = StoredRow(1, CASE, 1, "domain.case:Case.Received", nested(levels))
    fast = hash_events([row], {}, 0)
    assert leaf_record(row).source == ("kafka:x" if readable else "")
    monkeypatch.setattr(stored, "_loads", json.loads)  # an auditor's machine without orjson
    assert hash_events([row], {}, 0) == fast
    assert leaf_record(row).source == ("kafka:x" if readable else "")
    assert column_leaf(CASE.bytes, 1, row.topic, row.state) == (fast[0].leaf, fast[0].fields)

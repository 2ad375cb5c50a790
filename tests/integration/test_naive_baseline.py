"""scripts/naive.py, the benchmarks' baseline (bench_ingest.py, bench_kafka_ingest.py):
it must still store events now that personal data is sealed with per-subject keys."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from adapters.postgres.event_store import CaseStore
from simulation import casegen
from tests.cli_process import ROOT


def _naive() -> ModuleType:
    spec = importlib.util.spec_from_file_location("naive", ROOT / "scripts" / "naive.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_naive_baseline_stores_events_that_hold_personal_data(store: CaseStore) -> None:
    lines = casegen.generate(3, seed=5)
    stored = sum(_naive().save_one(store.app, line) for line in lines)
    assert stored > 3  # each file's application.received (personal data) and what follows
    assert store.recorder.max_notification_id() == stored

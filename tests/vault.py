"""The vault every test store, API and `casetrack` subprocess shares: one KEK file and one
blind-index secret, so that what one of them sealed, another opens."""

from __future__ import annotations

import tempfile
from pathlib import Path

from adapters.bootstrap import open_case_store
from adapters.postgres.event_store import CaseStore
from adapters.privacy.vault import Vault

SECRET = "casetrack-tests-blind-index-secret-0123456789"
TEST_VAULT = Vault(
    kek_file=Path(tempfile.gettempdir()) / "casetrack-tests" / "kek.key",
    secret=SECRET.encode(),
    generate=True,
)


def vault_env() -> dict[str, str]:
    """The environment that gives a `casetrack` subprocess TEST_VAULT."""
    TEST_VAULT.kek  # noqa: B018 - made before any subprocess reads it
    return {"CASETRACK_KEK_FILE": str(TEST_VAULT.kek_file), "CASETRACK_SECRET_KEY": SECRET}


def open_test_store(url: str, schema: str) -> CaseStore:
    """What a rebuild's worker processes open their stores with in tests (it pickles)."""
    return open_case_store(url, schema, TEST_VAULT)

"""casetrack with personal-data encryption off, as the release before it wrote and read its
log: the baseline of the benchmarks that measure what encryption costs (bench_overhead.py
--encryption-off, bench_sealing.py). Never a setting of casetrack itself: a log must not
be written in plaintext by mistake.

Run as a script, it is the `casetrack` command with encryption off, in the worker
processes a rebuild spawns too (they open their stores with ``open_plaintext_store``).
"""

from __future__ import annotations

import sys
from functools import partial

from adapters import bootstrap
from adapters.postgres.event_store import CaseStore
from adapters.privacy.personal_codec import PersonalDataCodec
from adapters.privacy.vault import Vault
from adapters.settings import Settings


def _holds_none(topic: str) -> bool:
    return False


class WritesPlaintext(PersonalDataCodec):
    """A codec that seals nothing and opens nothing (the store's personal values stay as
    they are; no subject or key is made)."""

    holds_personal_data = staticmethod(_holds_none)


def encryption_off() -> None:
    """Every codec of this process from now on: WritesPlaintext's behaviour."""
    PersonalDataCodec.holds_personal_data = staticmethod(_holds_none)  # type: ignore[method-assign]


def open_plaintext_store(url: str, schema: str, vault: Vault) -> CaseStore:
    """bootstrap.open_case_store in a (spawned) process with encryption off."""
    encryption_off()
    return bootstrap.open_case_store(url, schema, vault)


def _plaintext_opener(settings: Settings) -> partial[CaseStore]:
    return partial(open_plaintext_store, vault=bootstrap.vault(settings))


if __name__ == "__main__":
    from adapters.cli.main import main

    encryption_off()
    bootstrap.store_opener = _plaintext_opener
    sys.exit(main())

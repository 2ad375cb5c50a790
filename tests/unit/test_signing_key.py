"""adapters.signing_key: the checkpoint key file is made once, owner-only, never overwritten,
and every way of not having a usable key is named (the key itself never is)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import signing_key
from domain.integrity.checkpoint import parse_vkey


def test_a_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "signing.key"
    verifier = signing_key.create(path, "ministry.example/cases")

    assert parse_vkey(verifier).name == "ministry.example/cases"
    assert path.stat().st_mode & 0o777 == 0o600
    assert signing_key.verifier(path) == verifier
    before = path.read_text()
    with pytest.raises(signing_key.SigningKeyError, match="never overwritten"):
        signing_key.create(path)
    assert path.read_text() == before


def test_a_missing_or_foreign_key_file_is_named_not_shown(tmp_path: Path) -> None:
    with pytest.raises(signing_key.SigningKeyError, match="casetrack audit keygen"):
        signing_key.signer(tmp_path / "absent.key")
    foreign = tmp_path / "foreign.key"
    foreign.write_text("PRIVATE+KEY+not-really-a-key")
    with pytest.raises(signing_key.SigningKeyError, match="does not hold a signing key") as e:
        signing_key.signer(foreign)
    assert "not-really" not in str(e.value)


def test_a_key_name_the_note_format_forbids_is_refused(tmp_path: Path) -> None:
    with pytest.raises(signing_key.SigningKeyError, match="cannot make a key"):
        signing_key.create(tmp_path / "k", "two words")
    assert not (tmp_path / "k").exists()

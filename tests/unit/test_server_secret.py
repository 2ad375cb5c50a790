"""adapters.server_secret: the key of rate-limit and lockout buckets, from the
environment or a file generated once under the casetrack home."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from adapters import server_secret
from domain import accounts


def test_generated_once_private_and_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(server_secret.VARIABLE, raising=False)
    monkeypatch.setenv("CASETRACK_HOME", str(tmp_path / "home"))
    first = server_secret.server_secret()
    assert len(first) >= 32
    path = tmp_path / "home" / server_secret.FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server_secret.server_secret() == first


def test_the_environment_wins_and_short_secrets_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASETRACK_HOME", str(tmp_path))
    monkeypatch.setenv(server_secret.VARIABLE, "k" * 40)
    assert server_secret.server_secret() == b"k" * 40
    assert not (tmp_path / server_secret.FILE).exists()
    monkeypatch.setenv(server_secret.VARIABLE, "short")
    with pytest.raises(server_secret.SecretError, match="at least 32"):
        server_secret.server_secret()


def test_bucket_keys_need_the_secret() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert accounts.bucket_digest(a, "login|12345678") == accounts.bucket_digest(
        a, "login|12345678"
    )
    assert accounts.bucket_digest(a, "login|12345678") != accounts.bucket_digest(
        b, "login|12345678"
    )

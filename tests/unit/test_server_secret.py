"""adapters.server_secret: the key of rate-limit and lockout buckets, from the
settings or a file generated once under the casetrack home."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from adapters import server_secret
from adapters.settings import Settings
from domain import accounts


def test_generated_once_private_and_stable(tmp_path: Path) -> None:
    settings = Settings.from_env({"CASETRACK_HOME": str(tmp_path / "home")})
    assert settings.secret_key is None
    first = server_secret.server_secret(settings.secret_key, settings.home)
    assert len(first) >= 32
    path = tmp_path / "home" / server_secret.FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server_secret.server_secret(settings.secret_key, settings.home) == first


def test_the_environment_wins_and_short_secrets_are_refused(tmp_path: Path) -> None:
    env = {"CASETRACK_HOME": str(tmp_path), "CASETRACK_SECRET_KEY": "k" * 40}
    settings = Settings.from_env(env)
    assert server_secret.server_secret(settings.secret_key, settings.home) == b"k" * 40
    assert not (tmp_path / server_secret.FILE).exists()
    env["CASETRACK_SECRET_KEY"] = "short"
    with pytest.raises(server_secret.SecretError, match="at least 32"):
        Settings.from_env(env)


def test_bucket_keys_need_the_secret() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert accounts.bucket_digest(a, "login|12345678") == accounts.bucket_digest(
        a, "login|12345678"
    )
    assert accounts.bucket_digest(a, "login|12345678") != accounts.bucket_digest(
        b, "login|12345678"
    )

"""adapters.settings: every CASETRACK_* variable, its default, and how a bad value is refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from adapters.settings import Settings
from adapters.smtp import SmtpSettings


def test_defaults_without_any_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings == Settings(home=tmp_path / ".casetrack")
    assert settings.database_url is None and settings.schema == "casetrack"
    assert settings.smtp == SmtpSettings()
    assert not (tmp_path / ".casetrack").exists(), "reading settings makes nothing"


def test_every_variable_is_read(tmp_path: Path) -> None:
    env = {
        "CASETRACK_DATABASE_URL": " postgresql://db/x ",
        "CASETRACK_HOME": str(tmp_path / "home"),
        "CASETRACK_SCHEMA": "other_1",
        "CASETRACK_LOG_LEVEL": "warning",
        "CASETRACK_SMTP_HOST": "mail.example.org",
        "CASETRACK_SMTP_PORT": "2525",
        "CASETRACK_SMTP_USER": "u",
        "CASETRACK_SMTP_PASSWORD": "p",
        "CASETRACK_SMTP_TLS": "SSL",
        "CASETRACK_SMTP_CA_FILE": "/ca.pem",
        "CASETRACK_MAIL_FROM": "IRCC <noreply@example.org>",
        "CASETRACK_SECRET_KEY": "s" * 32,
        "CASETRACK_SESSION_MINUTES": "30",
        "CASETRACK_READY_MAX_LAG": "5",
        "CASETRACK_DB_POOL_MAX": "3",
        "CASETRACK_READ_CONNECTIONS": "2",
        "CASETRACK_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16",
        "CASETRACK_METRICS_TOKEN": " " + "t" * 32 + " ",
        "CASETRACK_PORT": "8080",
        "CASETRACK_SIGNING_KEY": str(tmp_path / "keys" / "log.key"),
        "CASETRACK_CHECKPOINT_SECONDS": "0",
        "CASETRACK_NOTIFY_GROUP_SECONDS": "0",
        "CASETRACK_NOTIFY_KEEP_DAYS": "7",
        "CASETRACK_PUBLIC_URL": "https://tracker.example.org/status/",
        "CASETRACK_WEBHOOK_ALLOW_PRIVATE": "1",
        "CASETRACK_WEBHOOK_TIMEOUT_SECONDS": "3",
    }
    assert Settings.from_env(env) == Settings(
        database_url="postgresql://db/x",
        home=tmp_path / "home",
        schema="other_1",
        log_level="warning",
        smtp=SmtpSettings(
            host="mail.example.org",
            port=2525,
            user="u",
            password="p",
            tls="ssl",
            mail_from="IRCC <noreply@example.org>",
            ca_file="/ca.pem",
        ),
        secret_key="s" * 32,
        session_ttl=timedelta(minutes=30),
        ready_max_lag=5,
        db_pool_max=3,
        read_connections=2,
        trusted_proxies=("10.0.0.1/32", "192.168.0.0/16"),
        metrics_token="t" * 32,
        demo_port=8080,
        signing_key=tmp_path / "keys" / "log.key",
        checkpoint_seconds=0,
        notify_group_seconds=0,
        notify_keep_days=7,
        public_url="https://tracker.example.org/status",
        webhook_allow_private=True,
        webhook_timeout=3,
    )


def test_the_signing_key_defaults_to_a_file_under_the_home(tmp_path: Path) -> None:
    settings = Settings.from_env({"CASETRACK_HOME": str(tmp_path)})
    assert settings.signing_key_file == tmp_path / "signing.key"
    assert settings.checkpoint_seconds == 60


def test_secrets_stay_out_of_the_repr() -> None:
    shown = repr(Settings(secret_key="s" * 32, metrics_token="t" * 32))
    assert "s" * 32 not in shown and "t" * 32 not in shown


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CASETRACK_SCHEMA", "Bad-Name", "CASETRACK_SCHEMA must be a lowercase identifier"),
        ("CASETRACK_SMTP_PORT", "70000", "CASETRACK_SMTP_PORT must be between 1 and 65535"),
        ("CASETRACK_SECRET_KEY", "short", "CASETRACK_SECRET_KEY must have at least 32"),
        (
            "CASETRACK_SESSION_MINUTES",
            "soon",
            r"CASETRACK_SESSION_MINUTES must be a whole number \(from 1 up\)",
        ),
        ("CASETRACK_SESSION_MINUTES", "-5", "CASETRACK_SESSION_MINUTES must be a whole number"),
        ("CASETRACK_READ_CONNECTIONS", "0", "CASETRACK_READ_CONNECTIONS must be a whole number"),
        ("CASETRACK_DB_POOL_MAX", "many", "CASETRACK_DB_POOL_MAX must be a whole number"),
        (
            "CASETRACK_READY_MAX_LAG",
            "-1",
            r"CASETRACK_READY_MAX_LAG must be a whole number \(from 0 up\)",
        ),
        ("CASETRACK_CHECKPOINT_SECONDS", "-1", "CASETRACK_CHECKPOINT_SECONDS must be a whole"),
        ("CASETRACK_PORT", "65536", r"CASETRACK_PORT must be a whole number \(from 1 to 65535\)"),
        ("CASETRACK_TRUSTED_PROXIES", "127.0.0.1, *", "CASETRACK_TRUSTED_PROXIES must list"),
        ("CASETRACK_METRICS_TOKEN", "short", "CASETRACK_METRICS_TOKEN must be at least 32"),
        ("CASETRACK_METRICS_TOKEN", "t" * 20 + " " + "t" * 20, "CASETRACK_METRICS_TOKEN"),
        ("CASETRACK_WEBHOOK_ALLOW_PRIVATE", "maybe", "CASETRACK_WEBHOOK_ALLOW_PRIVATE must be"),
        ("CASETRACK_PUBLIC_URL", "tracker.example.org", "CASETRACK_PUBLIC_URL must be"),
        ("CASETRACK_PUBLIC_URL", "https://t.example/?x=1", "CASETRACK_PUBLIC_URL must be"),
        ("CASETRACK_NOTIFY_KEEP_DAYS", "1", "CASETRACK_NOTIFY_KEEP_DAYS must be a whole"),
        ("CASETRACK_WEBHOOK_TIMEOUT_SECONDS", "60", "CASETRACK_WEBHOOK_TIMEOUT_SECONDS must"),
    ],
)
def test_a_malformed_value_is_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({name: value})

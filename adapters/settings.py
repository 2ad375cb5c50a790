"""casetrack's settings: every environment variable it reads, read and checked here only.

``Settings.from_env()`` is called once by each entrypoint (adapters.cli.main,
the uvicorn factory, scripts/demo.py) and handed to adapters.bootstrap, which
builds everything else from it. A malformed value is refused with a message
naming its variable (never showing a secret).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from adapters.server_secret import MIN_LENGTH, SecretError
from adapters.smtp import DEFAULT_PORTS, TLS_MODES, SmtpConfigError, SmtpSettings

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")


@dataclass(frozen=True)
class Settings:
    # CASETRACK_DATABASE_URL; None: the embedded server under ``home`` (adapters.bootstrap)
    database_url: str | None = None
    # CASETRACK_HOME: the embedded server's data, the generated server secret, the demo's files
    home: Path = field(default_factory=lambda: Path(".casetrack").resolve())
    # CASETRACK_SCHEMA: the PostgreSQL schema that holds casetrack's tables
    schema: str = "casetrack"
    # CASETRACK_LOG_LEVEL: a logging level name (adapters.logs)
    log_level: str = "info"
    # CASETRACK_SMTP_HOST, _PORT, _USER, _PASSWORD, _TLS, _CA_FILE and CASETRACK_MAIL_FROM
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    # CASETRACK_SECRET_KEY; None: a key generated once under ``home`` (adapters.server_secret)
    secret_key: str | None = field(default=None, repr=False)
    # CASETRACK_SESSION_MINUTES
    session_ttl: timedelta = timedelta(hours=8)
    # CASETRACK_READY_MAX_LAG: /readyz fails while a projection is more events behind
    ready_max_lag: int = 10_000
    # CASETRACK_DB_POOL_MAX: the API's connection pool
    db_pool_max: int = 16
    # CASETRACK_READ_CONNECTIONS: the API pollers' dedicated connections
    read_connections: int = 8
    # CASETRACK_TRUSTED_PROXIES: peers whose X-Forwarded-For/-Proto the API believes
    trusted_proxies: tuple[str, ...] = ()
    # CASETRACK_METRICS_TOKEN: bearer token for /metrics; None: /metrics is not served
    metrics_token: str | None = field(default=None, repr=False)
    # CASETRACK_PORT: the port `make run` (scripts/demo.py) serves the API on
    demo_port: int = 8000
    # CASETRACK_SIGNING_KEY: the checkpoints' Ed25519 key file (adapters.signing_key);
    # None: signing.key under ``home``
    signing_key: Path | None = None
    # CASETRACK_CHECKPOINT_SECONDS: how often `casetrack project` signs a checkpoint when
    # the log grew; 0: never (`casetrack audit checkpoint` still does)
    checkpoint_seconds: int = 60
    # CASETRACK_KEK_FILE: the key-encryption key that wraps personal-data keys
    # (adapters.privacy.kek); None: kek.key under ``home``, generated when missing
    kek: Path | None = None
    # CASETRACK_KEK_PREVIOUS_FILE: while `casetrack privacy rotate-kek` runs, the KEK being
    # replaced, so that keys it wrapped still open
    previous_kek: Path | None = None
    # CASETRACK_DEAD_LETTER_RAW_DAYS: days a dead letter keeps its raw input (it can hold
    # personal data); then `casetrack project` drops it (adapters.raw_input_expiry)
    dead_letter_raw_days: int = 30
    # CASETRACK_KAFKA_SECURITY_PROTOCOL, _SASL_MECHANISM, _SASL_USERNAME, _SASL_PASSWORD(_FILE),
    # _SSL_CAFILE, _SSL_CERTFILE, _SSL_KEYFILE, _SSL_CHECK_HOSTNAME: every Kafka client's TLS
    # and SASL, collected here and checked, with the --kafka-* flags over them, by the
    # commands that use Kafka (consumers.kafka.security): a process that never talks to
    # Kafka is not stopped by them. Not in the repr (the password).
    kafka_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    # CASETRACK_NOTIFY_GROUP_SECONDS: changes to one person's files within this window go
    # in one email (docs/notifications.md); 0 sends each at once
    notify_group_seconds: int = 900
    # CASETRACK_NOTIFY_KEEP_DAYS: sent, skipped and dead-lettered notifications are
    # deleted after this many days (`casetrack webhooks redeliver` needs them until then)
    notify_keep_days: int = 30
    # CASETRACK_PUBLIC_URL: the tracker's address, for the links in notification emails
    public_url: str = "http://localhost:8000"
    # CASETRACK_WEBHOOK_ALLOW_PRIVATE=1: webhooks may go to private and loopback addresses
    # (tests, `make run`); never in production (SSRF)
    webhook_allow_private: bool = False
    # CASETRACK_WEBHOOK_TIMEOUT_SECONDS: connect and read timeout of a webhook delivery
    webhook_timeout: int = 5
    # CASETRACK_PROBE_PORT: where `consume`, `notify` and `project` answer /livez and
    # /readyz (adapters.probes); None: no probe server (--probe-port overrides it)
    probe_port: int | None = None

    @property
    def signing_key_file(self) -> Path:
        return self.signing_key or self.home / "signing.key"

    @property
    def kek_file(self) -> Path:
        return self.kek or self.home / "kek.key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """The settings ``env`` gives; ValueError (SmtpConfigError, SecretError) when one is
        malformed. Reads only: no file is made, no server started."""
        return cls(
            database_url=env.get("CASETRACK_DATABASE_URL", "").strip() or None,
            home=Path(env.get("CASETRACK_HOME", ".casetrack")).resolve(),
            schema=_schema(env.get("CASETRACK_SCHEMA", "casetrack")),
            log_level=env.get("CASETRACK_LOG_LEVEL", "info"),
            smtp=_smtp(env),
            secret_key=_secret_key(env.get("CASETRACK_SECRET_KEY", "")),
            session_ttl=timedelta(minutes=_whole(env, "CASETRACK_SESSION_MINUTES", 480, 1)),
            ready_max_lag=_whole(env, "CASETRACK_READY_MAX_LAG", 10_000, 0),
            db_pool_max=_whole(env, "CASETRACK_DB_POOL_MAX", 16, 1),
            read_connections=_whole(env, "CASETRACK_READ_CONNECTIONS", 8, 1),
            trusted_proxies=_trusted_proxies(env.get("CASETRACK_TRUSTED_PROXIES", "")),
            metrics_token=_metrics_token(env.get("CASETRACK_METRICS_TOKEN", "")),
            demo_port=_whole(env, "CASETRACK_PORT", 8000, 1, 65535),
            signing_key=Path(key).resolve() if (key := env.get("CASETRACK_SIGNING_KEY")) else None,
            checkpoint_seconds=_whole(env, "CASETRACK_CHECKPOINT_SECONDS", 60, 0),
            kek=Path(kek).resolve() if (kek := env.get("CASETRACK_KEK_FILE")) else None,
            dead_letter_raw_days=_whole(env, "CASETRACK_DEAD_LETTER_RAW_DAYS", 30, 1, 3650),
            kafka_env={k: v for k, v in env.items() if k.startswith("CASETRACK_KAFKA_")},
            notify_group_seconds=_whole(env, "CASETRACK_NOTIFY_GROUP_SECONDS", 900, 0, 86400),
            notify_keep_days=_whole(env, "CASETRACK_NOTIFY_KEEP_DAYS", 30, 4, 3650),
            public_url=_public_url(env.get("CASETRACK_PUBLIC_URL", "")),
            webhook_allow_private=_flag(env, "CASETRACK_WEBHOOK_ALLOW_PRIVATE"),
            webhook_timeout=_whole(env, "CASETRACK_WEBHOOK_TIMEOUT_SECONDS", 5, 1, 30),
            probe_port=_whole(env, "CASETRACK_PROBE_PORT", 0, 1, 65535) or None,
            previous_kek=Path(p).resolve()
            if (p := env.get("CASETRACK_KEK_PREVIOUS_FILE"))
            else None,
        )


def _whole(
    env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None = None
) -> int:
    """A whole number from ``env[name]``; a malformed or out-of-range one is refused by name."""
    text = env.get(name, "").strip()
    if not text:
        return default
    bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else " up")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number ({bounds})") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be a whole number ({bounds})")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise ValueError(f"{name} must be 1 or 0")


def _public_url(text: str) -> str:
    url = text.strip().rstrip("/") or "http://localhost:8000"
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise ValueError("CASETRACK_PUBLIC_URL must be an http(s) URL without query")
    return url


def _schema(name: str) -> str:
    if not _SCHEMA_NAME.fullmatch(name):
        raise ValueError("CASETRACK_SCHEMA must be a lowercase identifier of at most 41 characters")
    return name


def _smtp(env: Mapping[str, str]) -> SmtpSettings:
    tls = env.get("CASETRACK_SMTP_TLS", "none").strip().lower()
    mode = next((m for m in TLS_MODES if m == tls), None)
    if mode is None:
        raise SmtpConfigError("CASETRACK_SMTP_TLS must be none, starttls or ssl")
    port_text = env.get("CASETRACK_SMTP_PORT", "").strip()
    try:
        port = int(port_text) if port_text else DEFAULT_PORTS[mode]
    except ValueError:
        raise SmtpConfigError("CASETRACK_SMTP_PORT must be a number") from None
    if not 0 < port < 65536:
        raise SmtpConfigError("CASETRACK_SMTP_PORT must be between 1 and 65535")
    return SmtpSettings(
        host=env.get("CASETRACK_SMTP_HOST", "127.0.0.1").strip() or "127.0.0.1",
        port=port,
        user=env.get("CASETRACK_SMTP_USER") or None,
        password=env.get("CASETRACK_SMTP_PASSWORD") or None,
        tls=mode,
        mail_from=env.get("CASETRACK_MAIL_FROM") or SmtpSettings.mail_from,
        ca_file=env.get("CASETRACK_SMTP_CA_FILE") or None,
    )


def _secret_key(text: str) -> str | None:
    """None (a generated key) when unset; a short key is refused."""
    if not text:
        return None
    if len(text) < MIN_LENGTH:
        raise SecretError(f"CASETRACK_SECRET_KEY must have at least {MIN_LENGTH} characters")
    return text


def _metrics_token(text: str) -> str | None:
    """None (metrics off) when unset; a guessable token is refused."""
    token = text.strip()
    if not token:
        return None
    if len(token) < 32 or not token.isascii() or not token.isprintable() or " " in token:
        raise ValueError("CASETRACK_METRICS_TOKEN must be at least 32 printable ASCII characters")
    return token


def _trusted_proxies(text: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks; anything else is refused (a typo must not
    quietly trust nobody, or everybody)."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(
                "CASETRACK_TRUSTED_PROXIES must list IP addresses or networks, comma-separated"
            ) from None
    return tuple(networks)

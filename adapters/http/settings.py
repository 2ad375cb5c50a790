"""What the API needs to run, gathered in one object so tests can inject each part
(the clock, the password hasher's cost, the limits, the mailer); adapters.bootstrap
builds it from the settings (adapters.settings)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from adapters.privacy.vault import Vault
from adapters.smtp import Mailer
from domain.backoff import Backoff

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Limit:
    hits: int
    per_seconds: int


@dataclass(frozen=True)
class Limits:
    """Per client address, and per login from one address, for each guarded action.

    No limit counts a login from every address together: that would hand anyone who
    knows a login a way to lock its owner out. Sign-in guesses also wait longer and
    longer per login and address (``sign_in``), and their count fades.
    """

    per_address: dict[str, Limit] = field(
        default_factory=lambda: {
            "register": Limit(30, 3600),
            "verify": Limit(30, 900),
            "login": Limit(60, 900),
            "reset": Limit(30, 3600),
            "reset-confirm": Limit(30, 900),
            "webhook": Limit(60, 3600),  # registering one resolves its host
        }
    )
    per_login_address: dict[str, Limit] = field(
        default_factory=lambda: {
            "register": Limit(5, 3600),
            "verify": Limit(10, 900),
            "login": Limit(20, 900),
            "reset": Limit(5, 3600),
            "reset-confirm": Limit(10, 900),
            "webhook": Limit(30, 3600),
        }
    )
    sign_in: Backoff = field(default_factory=Backoff)
    # Code guesses per login, purpose and address: a guesser elsewhere never kills the
    # owner's code (each code also has a total, domain.accounts.CODE_MAX_ATTEMPTS).
    code_guesses: Backoff = field(default_factory=Backoff)
    # Codes mailed per login and purpose, whoever asks: no flooding a mailbox from many
    # addresses. The owner is not locked out: every code sent went to their own address.
    mails_per_login: Limit = field(default_factory=lambda: Limit(5, 3600))


@dataclass(frozen=True)
class HasherCost:
    """argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane), about
    30 ms a hash here; heavier settings make every sign-in a cheap way to load the server."""

    time_cost: int = 2
    memory_cost: int = 19456  # KiB
    parallelism: int = 1


@dataclass(frozen=True)
class ApiSettings:
    database_url: str
    schema: str
    mailer: Mailer
    # The KEK and the blind-index secret: personal data is opened and matched with these.
    vault: Vault
    clock: Clock = utc_now
    # Keys the rate-limit and lockout buckets (HMAC); bootstrap shares one across processes.
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    limits: Limits = field(default_factory=Limits)
    hasher: HasherCost = field(default_factory=HasherCost)
    session_ttl: timedelta = timedelta(hours=8)
    code_ttl: timedelta = timedelta(hours=12)
    max_lag_events: int = 10_000
    cache_max_age: int = 60
    estimate_ttl_seconds: float = 300.0
    pool_min: int = 2
    pool_max: int = 16
    read_connections: int = 8  # the pollers' read has its own (adapters.postgres.lane)
    # Peers whose X-Forwarded-For/-Proto we believe (addresses or networks); none by default,
    # so a client cannot pick the address its rate limits are counted against.
    trusted_proxies: tuple[str, ...] = ()
    # Bearer token for /metrics; without one, /metrics is not served.
    metrics_token: str | None = None
    max_body_bytes: int = 64 * 1024  # the largest valid body is under 1 KiB
    max_headers: int = 100
    max_header_bytes: int = 16 * 1024  # request line and headers together (h11)
    # Webhook URLs may point at private and loopback addresses (tests, `make run` only)
    webhook_allow_private: bool = False

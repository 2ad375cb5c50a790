"""Who is calling: bearer tokens for sessions and auditor keys, the rate-limit guard, and
the backoff of guesses (passwords, codes).

A token is checked for its shape before any query (``cts_`` sessions,
``cta_`` auditor keys, 43 url-safe characters), then looked up by its hash.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.http.problems import Problem, rate_limited, unauthenticated
from adapters.http.services import Services, ServicesDep
from adapters.postgres.accounts_store import Account
from adapters.postgres.auditors_store import Auditor
from domain.accounts import AUDITOR_PREFIX, SESSION_PREFIX, bucket_digest, is_token, token_digest
from domain.backoff import Backoff

bearer = HTTPBearer(auto_error=False, description="A session token or an auditor API key")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def token_hash(credentials: HTTPAuthorizationCredentials | None, prefix: str) -> bytes | None:
    """The stored hash of a well-formed token of the given kind; None for anything else."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        return None
    token = credentials.credentials
    if not is_token(token) or not token.startswith(prefix):
        return None
    return token_digest(token)


async def session_hash(credentials: Bearer) -> bytes:
    """A well-formed session token's hash (the session itself is checked by the query)."""
    found = token_hash(credentials, SESSION_PREFIX)
    if found is None:
        raise _wrong_kind(credentials) or unauthenticated()
    return found


SessionHash = Annotated[bytes, Depends(session_hash)]
# For routes that read the header themselves (see session_hash_of): documents the scheme.
BEARER_SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


def _credentials(header: str | None) -> HTTPAuthorizationCredentials | None:
    scheme, _, token = (header or "").partition(" ")
    if not token:
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())


def token_hash_of_header(header: str | None) -> bytes | None:
    """A well-formed session token's hash from an Authorization header value, else None."""
    return token_hash(_credentials(header), SESSION_PREFIX)


def session_hash_of(request: Request) -> bytes:
    """``session_hash`` without FastAPI's dependency machinery, for the read routes
    (dependency resolution costs more than the rest of a 304)."""
    credentials = _credentials(request.headers.get("authorization"))
    found = token_hash(credentials, SESSION_PREFIX)
    if found is None:
        raise _wrong_kind(credentials) or unauthenticated()
    return found


async def current_account(token: SessionHash, services: ServicesDep) -> Account:
    account = await services.accounts.session_account(token, services.settings.clock())
    if account is None:
        raise unauthenticated()
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]


async def current_auditor(credentials: Bearer, services: ServicesDep) -> Auditor:
    key = token_hash(credentials, AUDITOR_PREFIX)
    if key is None:
        if token_hash(credentials, SESSION_PREFIX) is not None:
            raise Problem(403, "Only auditor API keys may read the audit endpoints.")
        raise unauthenticated()
    auditor = await services.auditors.by_key(key)
    if auditor is None:
        raise unauthenticated()
    return auditor


CurrentAuditor = Annotated[Auditor, Depends(current_auditor)]


def _wrong_kind(credentials: HTTPAuthorizationCredentials | None) -> Problem | None:
    if token_hash(credentials, AUDITOR_PREFIX) is not None:
        return Problem(403, "Auditor keys read /v1/audit; client endpoints need a session.")
    return None


def client_address(request: Request) -> str:
    """The caller's address as the limits count it: an IPv6 caller by its /64, which one
    host or home network gets whole (counting each address would let it rotate freely)."""
    host = request.client.host if request.client else "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def backoff_bucket(request: Request, services: Services, kind: str, login: str) -> bytes:
    """A backoff bucket: guesses of ``kind`` (sign-in, a code's purpose) at this login from
    this client address."""
    value = f"{kind}|{login}|{client_address(request)}"
    return bucket_digest(services.settings.secret_key, f"backoff|{value}")


async def count_guess(
    services: Services, bucket: bytes, policy: Backoff, now: datetime, action: str
) -> None:
    """Count a guess in its backoff ``bucket`` before it is checked (so parallel guesses
    are all counted); past ``policy``'s free guesses, 429 until the wait is over (counted
    in the metrics as ``action``)."""
    until = await services.accounts.attempt(bucket, now, policy)
    if until is not None:
        services.metrics.rate_limited(action)
        raise rate_limited(max(1, math.ceil((until - now).total_seconds())))


async def guard(request: Request, services: Services, action: str, login: str) -> None:
    """Count the call against the client address's limit and the login's limit from that
    address (never the login's alone: anyone could exhaust that and lock the owner out)."""
    limits = services.settings.limits
    now = services.settings.clock()
    address = client_address(request)
    waits = []
    for kind, value, limit in (
        ("address", address, limits.per_address[action]),
        ("login-address", f"{login}|{address}", limits.per_login_address[action]),
    ):
        bucket = bucket_digest(services.settings.secret_key, f"{action}|{kind}|{value}")
        waits.append(await services.rates.hit(bucket, limit.hits, limit.per_seconds, now))
    if max(waits) > 0:
        services.metrics.rate_limited(action)
        raise rate_limited(max(waits))

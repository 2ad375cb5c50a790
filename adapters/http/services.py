"""What the routes share for the app's lifetime: pools, stores, caches, the mail outbox.

adapters.bootstrap builds it when the app starts; routes take it as ``ServicesDep``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.http.estimates import Estimates
from adapters.http.metrics import Metrics
from adapters.http.outbox import Outbox
from adapters.http.passwords import Passwords
from adapters.http.settings import ApiSettings
from adapters.postgres.accounts_store import AccountsStore
from adapters.postgres.auditors_store import AuditorsStore
from adapters.postgres.event_store import CaseStore
from adapters.postgres.lane import ConnectionLane
from adapters.postgres.rate_limits import RateLimits
from adapters.postgres.reads_store import ReadsStore
from adapters.postgres.webhooks_store import WebhooksStore


@dataclass
class Services:
    settings: ApiSettings
    pool: AsyncConnectionPool[Any]
    lane: ConnectionLane
    case_store: CaseStore
    accounts: AccountsStore
    reads: ReadsStore
    rates: RateLimits
    auditors: AuditorsStore
    passwords: Passwords
    estimates: Estimates
    metrics: Metrics
    outbox: Outbox
    webhooks: WebhooksStore

    async def open(self) -> None:
        await self.pool.open(wait=False)
        self.outbox.start()

    async def close(self) -> None:
        await self.outbox.stop()  # queued codes go out while the pool is still open
        await self.lane.close()
        await self.pool.close()
        self.case_store.close()


async def configure_connection(conn: AsyncConnection[Any]) -> None:
    """Every API connection (pool and lane) works in UTC."""
    await conn.execute("SET TIME ZONE 'UTC'")


async def app_services(request: Request) -> Services:
    """async on purpose: FastAPI runs a plain ``def`` dependency in the thread pool."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(app_services)]

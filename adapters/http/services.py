"""What the routes share for the app's lifetime: pools, stores, caches, the mail outbox."""

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
from adapters.http.settings import Settings
from adapters.postgres.accounts_store import AccountsStore
from adapters.postgres.auditors_store import AuditorsStore
from adapters.postgres.event_store import CaseStore
from adapters.postgres.lane import ConnectionLane
from adapters.postgres.rate_limits import RateLimits
from adapters.postgres.reads_store import ReadsStore


@dataclass
class Services:
    settings: Settings
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

    @classmethod
    def create(cls, settings: Settings, metrics: Metrics) -> Services:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            settings.database_url,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            timeout=10.0,
        )
        lane = ConnectionLane(settings.database_url, settings.read_connections, _configure)
        case_store = CaseStore(settings.database_url, settings.schema)
        schema = settings.schema
        return cls(
            settings=settings,
            pool=pool,
            lane=lane,
            case_store=case_store,
            accounts=AccountsStore(pool, schema),
            reads=ReadsStore(lane, schema),
            rates=RateLimits(pool, schema),
            auditors=AuditorsStore(pool, schema),
            passwords=Passwords(settings.hasher),
            estimates=Estimates(case_store, settings.clock, settings.estimate_ttl_seconds),
            metrics=metrics,
            outbox=Outbox(),
        )

    async def open(self) -> None:
        await self.pool.open(wait=False)
        self.outbox.start()

    async def close(self) -> None:
        await self.outbox.stop()  # queued codes go out while the pool is still open
        await self.lane.close()
        await self.pool.close()
        self.case_store.close()


async def _configure(conn: AsyncConnection[Any]) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


async def services(request: Request) -> Services:
    """async on purpose: FastAPI runs a plain ``def`` dependency in the thread pool."""
    found: Services = request.app.state.services
    return found


Found = Annotated[Services, Depends(services)]

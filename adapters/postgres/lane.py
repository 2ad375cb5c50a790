"""A few dedicated connections for the hottest statement: a queue instead of a pool.

psycopg_pool's checkout (timeouts, health bookkeeping) costs about as much CPU
as the query itself on this machine; the pollers' read needs none of it. A
connection that breaks is replaced on its next use, so the lane survives a
database restart like the pool does. Connections are autocommit and prepare
statements on first use; ``configure`` runs once on each new one (the API's sets UTC).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection

Configure = Callable[[AsyncConnection[Any]], Awaitable[None]]


class ConnectionLane:
    def __init__(self, url: str, size: int, configure: Configure | None = None) -> None:
        self.url = url
        self.size = size
        self.configure = configure
        self._idle: asyncio.Queue[AsyncConnection[Any] | None] | None = None

    def _queue(self) -> asyncio.Queue[AsyncConnection[Any] | None]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self.size):
                self._idle.put_nowait(None)  # connected on first use
        return self._idle

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        idle = self._queue()
        conn = await idle.get()
        try:
            if conn is None or conn.closed or conn.broken:
                if conn is not None:
                    await conn.close()
                conn = None
                conn = await AsyncConnection.connect(
                    self.url, autocommit=True, prepare_threshold=0, connect_timeout=5
                )
                if self.configure is not None:
                    await self.configure(conn)
            yield conn
        finally:
            idle.put_nowait(conn)

    async def close(self) -> None:
        if self._idle is None:
            return
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if conn is not None:
                await conn.close()

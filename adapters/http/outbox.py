"""Slow account work (matching a registration, hashing and storing a code, sending the
mail) queued in process and done by worker tasks, never inside a request's ASGI call.

A registration's answer, and the next request on its connection, then cost the same
whether or not the details matched: the request only enqueues. The queue is bounded;
a full queue is refused at once (the caller answers 503), whatever the request held.
Work still queued at shutdown gets a bounded time to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("casetrack.outbox")
Job = Callable[[], Awaitable[None]]


class Outbox:
    def __init__(self, workers: int = 1, capacity: int = 1000) -> None:
        """One worker by default: codes for one login are then stored and mailed in the
        order asked, so the last mail received always holds the code that works."""
        self._workers = workers
        self._capacity = capacity
        self._queue: asyncio.Queue[Job] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._queue = asyncio.Queue(self._capacity)
        self._tasks = [asyncio.create_task(self._work(self._queue)) for _ in range(self._workers)]

    def submit(self, job: Job) -> bool:
        """Queue a job; False when the queue is full (or the outbox is not running)."""
        if self._queue is None:
            return False
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            return False
        return True

    async def join(self) -> None:
        """Wait until every job queued so far is done."""
        if self._queue is not None:
            await self._queue.join()

    async def stop(self, grace: float = 10.0) -> None:
        queue, self._queue = self._queue, None  # no new jobs while the queued ones finish
        if queue is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.join(), grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @staticmethod
    async def _work(queue: asyncio.Queue[Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await job()
            except Exception as e:  # a job has nobody to answer: log the type only
                log.error("account job failed", error=type(e).__name__)
            finally:
                queue.task_done()

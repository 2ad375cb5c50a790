"""Worker processes for rebuilds: case id ranges replayed or checked in parallel.

A rebuild's work splits by case: every event of a case goes to the worker
that owns the case's id range, so per-case rows need no coordination and
aggregates merge afterwards. Workers are spawned (not forked: no inherited
connections or locks), each opens its own store once, with the ``Opener`` the
caller gives, and keeps it for the pool's next tasks. Without an opener,
everything runs in the caller's process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from projections.ports import Opener, ProjectionStore

T = TypeVar("T")

PARALLEL_FROM = 200_000  # events; below this, starting processes costs more than it saves


def worker_count(requested: int | None, events: int, opener: Opener | None) -> int:
    """``requested``, else one per core (at most 8) for PARALLEL_FROM events or more, else 1.
    Without an ``opener`` a worker could not open its store: 1, and asking for more raises."""
    if requested is not None:
        if requested > 1 and opener is None:
            raise ValueError("worker processes need an opener for their stores")
        return max(requested, 1)
    if opener is None:
        return 1
    return min(os.cpu_count() or 1, 8) if events >= PARALLEL_FROM else 1


@dataclass
class Run:
    """``run(fn, store, tasks)``: ``fn(store, task)`` for each task, in order, on the
    pool's processes (each with a store from ``opener(store.url, store.schema)``) or in
    this process with ``store``; ``fn`` and the tasks must pickle."""

    workers: int
    pool: ProcessPoolExecutor | None = None
    opener: Opener | None = None

    def __call__(
        self,
        fn: Callable[[ProjectionStore, Any], T],
        store: ProjectionStore,
        tasks: Sequence[Any],
    ) -> list[T]:
        if self.pool is None or self.opener is None:
            return [fn(store, task) for task in tasks]
        work = partial(_in_worker, self.opener, store.url, store.schema, fn)
        return list(self.pool.map(work, tasks))


@contextmanager
def runner(requested: int | None, events: int, opener: Opener | None) -> Iterator[Run]:
    """A ``Run`` on ``worker_count(requested, events, opener)`` processes."""
    workers = worker_count(requested, events, opener)
    if workers == 1 or opener is None:
        yield Run(1)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield Run(workers, pool, opener)


def case_ranges(parts: int) -> list[tuple[UUID | None, UUID | None]]:
    """``parts`` contiguous case id ranges [first, stop) covering every id (None: open
    end); case ids are uuid5, spread evenly over the id space."""
    if parts == 1:
        return [(None, None)]
    bounds = [UUID(int=i * 2**128 // parts) for i in range(1, parts)]
    return list(zip([None, *bounds], [*bounds, None], strict=True))


_STORES: dict[tuple[str, str], ProjectionStore] = {}


def _in_worker(
    opener: Opener, url: str, schema: str, fn: Callable[[ProjectionStore, Any], T], task: Any
) -> T:
    key = (url, schema)
    if key not in _STORES:
        _STORES[key] = opener(url, schema)
    return fn(_STORES[key], task)

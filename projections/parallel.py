"""Worker processes for rebuilds: case id ranges replayed or checked in parallel.

A rebuild's work splits by case: every event of a case goes to the worker
that owns the case's id range, so per-case rows need no coordination and
aggregates merge afterwards. Workers are spawned (not forked: no inherited
connections or locks), each opens its own store once and keeps it for the
pool's next tasks.
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

from adapters.postgres.event_store import CaseStore

T = TypeVar("T")

PARALLEL_FROM = 200_000  # events; below this, starting processes costs more than it saves


def worker_count(requested: int | None, events: int) -> int:
    """``requested``, else one per core (at most 8) for PARALLEL_FROM events or more, else 1."""
    if requested is not None:
        return max(requested, 1)
    return min(os.cpu_count() or 1, 8) if events >= PARALLEL_FROM else 1


@dataclass
class Run:
    """``run(fn, store, tasks)``: ``fn(store, task)`` for each task, in order, on the
    pool's processes (each with its own store) or in this process with ``store``.
    A task carries ``url`` and ``schema`` so a worker can open its store."""

    workers: int
    pool: ProcessPoolExecutor | None = None

    def __call__(
        self, fn: Callable[[CaseStore, Any], T], store: CaseStore, tasks: Sequence[Any]
    ) -> list[T]:
        if self.pool is None:
            return [fn(store, task) for task in tasks]
        return list(self.pool.map(partial(_in_worker, fn), tasks))


@contextmanager
def runner(workers: int) -> Iterator[Run]:
    if workers == 1:
        yield Run(1)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield Run(workers, pool)


def case_ranges(parts: int) -> list[tuple[UUID | None, UUID | None]]:
    """``parts`` contiguous case id ranges [first, stop) covering every id (None: open
    end); case ids are uuid5, spread evenly over the id space."""
    if parts == 1:
        return [(None, None)]
    bounds = [UUID(int=i * 2**128 // parts) for i in range(1, parts)]
    return list(zip([None, *bounds], [*bounds, None], strict=True))


_STORES: dict[tuple[str, str], CaseStore] = {}


def _in_worker(fn: Callable[[CaseStore, Any], T], task: Any) -> T:
    key = (task.url, task.schema)
    if key not in _STORES:
        _STORES[key] = CaseStore(*key)
    return fn(_STORES[key], task)

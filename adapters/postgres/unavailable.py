"""The database's transient errors, raised to the write side as its port's StoreUnavailable.

The write side (consumers/) knows no driver: what it may retry is StoreUnavailable
(consumers/ports.py). eventsourcing re-raises psycopg's errors as its own, and a
connection pool or listener may raise psycopg's directly, so both are translated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

from consumers.ports import StoreUnavailable
from projections.failures import unavailable

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def store_unavailable() -> Iterator[None]:
    """Raise StoreUnavailable for a transient database error inside the block."""
    try:
        yield
    except Exception as e:
        if not unavailable(e):
            raise
        raise StoreUnavailable(str(e)) from e


def raises_store_unavailable(method: Callable[P, R]) -> Callable[P, R]:
    """``store_unavailable`` around every call of ``method``."""

    @wraps(method)
    def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        with store_unavailable():
            return method(*args, **kwargs)

    return translated

"""Runs projections continuously: catch up, then wait for new events.

Projections advance together, a page at a time, so each page is read and
decoded once for all of them. Writers NOTIFY on every insert; we LISTEN and
wake at once, and also poll every ``poll_interval`` seconds so a lost
notification (or a listener connection that dropped) never stalls a
projection. If the database goes away, at start-up or in any phase after
(catch-up, between pages, waiting on LISTEN), the loop backs off (0.5 s doubling
to 30 s, domain.backoff.RetryBackoff) and retries; positions, stored with each
page's rows, make every retry safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg
import structlog
from psycopg.sql import SQL, Identifier

from domain.backoff import RetryBackoff
from projections.failures import unavailable
from projections.ports import ClosableStore, ProjectionStore
from projections.projector import PageCache, Projection, Projector

log = structlog.get_logger("casetrack.projections")

S = TypeVar("S", bound=ClosableStore)


def _backoff() -> RetryBackoff:
    """Pauses between attempts while the database is away."""
    return RetryBackoff(0.5, 30.0)


def open_store(opener: Callable[[], S], stop: threading.Event) -> S | None:
    """``opener()``'s store, once the database answers and has the schema; None if
    stopped first.

    A daemon started before its database waits here instead of exiting: an opener
    that raises because the database is away is called again after a pause. A missing
    schema is not an outage: it raises.
    """
    backoff = _backoff()
    while not stop.is_set():
        try:
            store = opener()
        except Exception as e:
            if not unavailable(e):
                raise
            _pause(e, backoff, stop)
            continue
        try:
            store.check_schema()
        except Exception as e:
            store.close()
            if not unavailable(e):
                raise
            _pause(e, backoff, stop)
            continue
        except BaseException:
            store.close()
            raise
        return store
    return None


def run(
    store: ProjectionStore,
    projections: Sequence[Projection],
    stop: threading.Event,
    *,
    poll_interval: float = 2.0,
    page_size: int = 5000,
    after_catch_up: Callable[[], None] | None = None,
) -> None:
    """Keep ``projections`` caught up until ``stop``; ``after_catch_up`` runs after each
    round (the periodic checkpoint), its database outages retried like the projections'."""
    pages = PageCache()
    projectors = [Projector(store, p, page_size=page_size, pages=pages) for p in projections]
    backoff = _backoff()
    listener: psycopg.Connection[tuple[object, ...]] | None = None
    try:
        while not stop.is_set():
            try:
                if listener is None or listener.closed:
                    listener = _listen(store.url, store.recorder.channel_name)
                _catch_up_together(projectors, stop)
                if after_catch_up is not None:
                    after_catch_up()
                backoff.succeeded()
                _wait(listener, poll_interval, stop)
            except Exception as e:
                if not unavailable(e):
                    raise
                if listener is not None:
                    listener.close()
                    listener = None
                _pause(e, backoff, stop)
    finally:
        if listener is not None:
            listener.close()


def _pause(error: Exception, backoff: RetryBackoff, stop: threading.Event) -> None:
    """Log, and wait the backoff's next pause (or until stopped)."""
    wait = backoff.failed()
    log.warning("database unavailable, retrying", error=type(error).__name__, wait=round(wait, 2))
    stop.wait(wait)


def _catch_up_together(projectors: Sequence[Projector], stop: threading.Event) -> None:
    """Page by page, each projector in turn: projectors at the same position read and
    decode each page once (the shared PageCache). Stops between pages once ``stop`` is
    set: a long backlog never delays a shutdown by more than a page."""
    applied = dict.fromkeys(projectors, 0)
    moving = list(projectors)
    while moving and not stop.is_set():
        for projector in list(moving):
            count = projector.step()
            applied[projector] += count
            if count == 0:
                moving.remove(projector)
    for projector, count in applied.items():
        if count:
            log.info("caught up", projection=projector.position_name, applied=count)


def _listen(url: str, channel: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    conn.execute(SQL("LISTEN {}").format(Identifier(channel)))
    return conn


def _wait(
    listener: psycopg.Connection[tuple[object, ...]], seconds: float, stop: threading.Event
) -> None:
    """Return on a notification, after ``seconds``, or soon after ``stop`` is set."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        for _ in listener.notifies(timeout=min(remaining, 0.5), stop_after=1):
            break
        else:
            continue
        # The notifications already queued are for commits the next round sees too: one
        # round for all of them, not one more round (empty) for each.
        for _ in listener.notifies(timeout=0):
            pass
        return

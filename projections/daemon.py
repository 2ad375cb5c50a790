"""Runs projections continuously: catch up, then wait for new events.

Projections advance together, a page at a time, so each page is read and
decoded once for all of them. Writers NOTIFY on every insert; we LISTEN and
wake at once, and also poll every ``poll_interval`` seconds so a lost
notification (or a listener connection that dropped) never stalls a
projection. If the database goes away, at start-up or in any phase after
(catch-up, between pages, waiting on LISTEN), the loop backs off and retries;
positions, stored with each page's rows, make every retry safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg.sql import SQL, Identifier

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from projections.projector import PageCache, Projection, Projector

log = structlog.get_logger("casetrack.projections")

# The database is away: the store raises eventsourcing's errors, the listener psycopg's.
UNAVAILABLE = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
MAX_BACKOFF = 30.0


def open_store(url: str, schema: str, stop: threading.Event) -> CaseStore | None:
    """The store, once the database answers and has the schema; None if stopped first.

    A store connects as it is made, so a daemon started before its database
    waits here instead of exiting. A store that failed to connect leaves its
    pool open, reconnecting, out of reach: a plain connection tries first. A
    missing schema is not an outage: it raises.
    """
    backoff = 0.5
    while not stop.is_set():
        try:
            psycopg.connect(url, connect_timeout=10).close()
            store = CaseStore(url, schema)
        except UNAVAILABLE as e:
            backoff = _unavailable(e, backoff, stop)
            continue
        try:
            store.check_schema()
            return store
        except UNAVAILABLE as e:
            store.close()
            backoff = _unavailable(e, backoff, stop)
        except BaseException:
            store.close()
            raise
    return None


def run(
    store: CaseStore,
    projections: Sequence[Projection],
    stop: threading.Event,
    *,
    poll_interval: float = 2.0,
    page_size: int = 5000,
) -> None:
    pages = PageCache()
    projectors = [Projector(store, p, page_size=page_size, pages=pages) for p in projections]
    backoff = 0.5
    listener: psycopg.Connection[tuple[object, ...]] | None = None
    try:
        while not stop.is_set():
            try:
                if listener is None or listener.closed:
                    listener = _listen(store.url)
                _catch_up_together(projectors, stop)
                backoff = 0.5
                _wait(listener, poll_interval, stop)
            except UNAVAILABLE as e:
                if listener is not None:
                    listener.close()
                    listener = None
                backoff = _unavailable(e, backoff, stop)
    finally:
        if listener is not None:
            listener.close()


def _unavailable(error: BaseException, backoff: float, stop: threading.Event) -> float:
    """Log, wait ``backoff`` (or until stopped) and return the next, longer wait."""
    log.warning("database unavailable, retrying", error=type(error).__name__, wait=backoff)
    stop.wait(backoff)
    return min(backoff * 2, MAX_BACKOFF)


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


def _listen(url: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    conn.execute(SQL("LISTEN {}").format(Identifier(EVENTS_TABLE)))
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
            return

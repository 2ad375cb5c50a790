"""Runs projections continuously: catch up, then wait for new events.

Projections advance together, a page at a time, so each page is read and
decoded once for all of them. Writers NOTIFY on every insert; we LISTEN and
wake at once, and also poll every ``poll_interval`` seconds so a lost
notification (or a listener connection that dropped) never stalls a
projection. If the database goes away, at start-up or in any phase after
(catch-up, between pages, waiting on LISTEN), the loop backs off (0.5 s doubling
to 30 s, domain.backoff.RetryBackoff) and retries; positions, stored with each
page's rows, make every retry safe.

Several daemons share the projections through leases (projections/leases.py): each
applies only those it holds, renewing its leases between pages and while it waits, so
one that dies or stops hands its projections to the others within about a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg.sql import SQL, Identifier

from domain.backoff import RetryBackoff
from projections.failures import unavailable
from projections.leases import CHORES, Alone, LeaseBackend, Leases
from projections.ports import ClosableStore, ProjectionStore
from projections.projector import PageCache, Projection, Projector

log = structlog.get_logger("casetrack.projections")

S = TypeVar("S", bound=ClosableStore)

HAND_OVER_AFTER = 3.0  # seconds of failing outage before giving the leases up


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
    leases: LeaseBackend | None = None,
) -> None:
    """Keep ``projections`` caught up until ``stop``; ``after_catch_up`` runs after each
    round (the periodic checkpoint), its database outages retried like the projections'.

    With ``leases``, this process applies the projections (and runs ``after_catch_up``)
    it holds the lease of, a fair share of them when other processes run too; without,
    all of them. Its leases are released when it returns, so others take over at once,
    and while it has failed to reach the database for ``HAND_OVER_AFTER`` seconds (when
    its lease connection still works, as when the server refuses it new connections).
    """
    pages = PageCache()
    projectors = [Projector(store, p, page_size=page_size, pages=pages) for p in projections]
    names = [p.position_name for p in projectors] + ([CHORES] if after_catch_up else [])
    held = Leases(leases or Alone(), names)
    backoff = _backoff()
    failing_since: float | None = None
    listener: psycopg.Connection[tuple[object, ...]] | None = None
    try:
        while not stop.is_set():
            try:
                if listener is None or listener.closed:
                    listener = _listen(store.url, store.recorder.channel_name)
                _catch_up_together(projectors, stop, held)
                if after_catch_up is not None and held.holds(CHORES) and not stop.is_set():
                    after_catch_up()
                backoff.succeeded()
                failing_since = None
                _wait(listener, poll_interval, stop, held)
            except Exception as e:
                if not unavailable(e):
                    raise
                if listener is not None:
                    listener.close()
                    listener = None
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since >= HAND_OVER_AFTER:
                    held.close()  # another process may reach the database: let it take over
                _pause(e, backoff, stop)
    finally:
        held.close()
        if listener is not None:
            listener.close()


def _pause(error: Exception, backoff: RetryBackoff, stop: threading.Event) -> None:
    """Log, and wait the backoff's next pause (or until stopped)."""
    wait = backoff.failed()
    log.warning("database unavailable, retrying", error=type(error).__name__, wait=round(wait, 2))
    stop.wait(wait)


def _catch_up_together(
    projectors: Sequence[Projector], stop: threading.Event, leases: Leases
) -> None:
    """Page by page, each projector whose lease this process holds in turn: projectors at
    the same position read and decode each page once (the shared PageCache). Leases are
    renewed before each page (at most once a second: projections.leases), so one given
    up or lost is not applied past the page in hand. Stops between pages once ``stop``
    is set: a long backlog never delays a shutdown by more than a page."""
    applied = dict.fromkeys(projectors, 0)
    caught_up: set[Projector] = set()

    def behind() -> list[Projector]:
        return [p for p in projectors if p not in caught_up and leases.holds(p.position_name)]

    while not stop.is_set():
        leases.renew()
        if not behind():
            break
        for projector in projectors:
            if stop.is_set():
                break
            leases.renew()
            if projector in caught_up or not leases.holds(projector.position_name):
                continue
            count = projector.step()
            applied[projector] += count
            if count == 0:
                caught_up.add(projector)
    for projector, count in applied.items():
        if count:
            log.info("caught up", projection=projector.position_name, applied=count)


def _listen(url: str, channel: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    conn.execute(SQL("LISTEN {}").format(Identifier(channel)))
    return conn


def _wait(
    listener: psycopg.Connection[tuple[object, ...]],
    seconds: float,
    stop: threading.Event,
    leases: Leases,
) -> None:
    """Return on a notification, after ``seconds``, soon after ``stop`` is set, or when
    a lease is taken over (a projection another process left behind: catch it up)."""
    wait_for_notification(listener, seconds, stop, leases.renew)


def wait_for_notification(
    listener: psycopg.Connection[Any],
    seconds: float,
    stop: threading.Event,
    woken: Callable[[], bool] = lambda: False,
) -> None:
    """Return on a NOTIFY on ``listener``, after ``seconds``, soon after ``stop`` is set,
    or when ``woken()`` (asked about every half second) says so. The notifications
    already queued are for commits the next round sees too: they are drained, so they
    make one round, not one more (empty) round each."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or woken():
            return
        for _ in listener.notifies(timeout=min(remaining, 0.5), stop_after=1):
            break
        else:
            continue
        for _ in listener.notifies(timeout=0):
            pass
        return

"""Which of the projections (and the daemon's chores) this `casetrack project` process
applies, when several run side by side: each holds leases on a fair share of them.

Every process of a group (those started with the same projections) is counted as a
member while it is connected; each holds at most ``fair_share(units, members)`` leases,
releases any over that (between pages), and takes free ones up to it. So two processes
split the work, a third takes its share from both, and when one dies its leases are
freed with its connection and the others take them at their next renewal (every
``interval``, about a second). ``LeaseBackend`` is the database side
(adapters/postgres/leases.py: session advisory locks on a connection of their own).

A lease is about sharing work, not about correctness: the page in hand is applied
under its position row's lock (projections/positions), so even two processes that
both believe they hold a projection (one whose lease connection is gone but not yet
noticed) never apply a page twice; the second waits for the first's page and then
finds the position moved on. A process that finds its lease connection lost drops
every lease at once and applies nothing until it holds them again.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

log = structlog.get_logger("casetrack.projections")

CHORES = "chores"  # the lease of the daemon's periodic chores (checkpoints, expiry)


class LeaseBackend(Protocol):
    """Leases kept by the database for as long as this process's connection lives."""

    def join(self, group: str) -> None:
        """Connect if not connected, and count this process a member of ``group``."""
        ...

    def members(self, group: str) -> int:
        """How many processes are members of ``group`` now (this one included)."""
        ...

    def try_take(self, name: str) -> bool:
        """Take the lease on ``name`` if no process holds it; whether this one now does."""
        ...

    def release(self, name: str) -> None: ...

    def close(self) -> None:
        """Release every lease and the membership (by closing the connection)."""
        ...


def fair_share(units: int, members: int) -> int:
    """The most leases one of ``members`` processes holds of ``units``: all of them are
    held between the members, none holds more than a rounded-up equal share."""
    return math.ceil(units / max(members, 1))


class Leases:
    """This process's leases on ``names``, renewed at most once per ``interval``."""

    def __init__(
        self,
        backend: LeaseBackend,
        names: Sequence[str],
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.names = tuple(names)
        self.group = ",".join(sorted(self.names))
        self.interval = interval
        self.clock = clock
        self._held: set[str] = set()
        self._due = clock()

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    def holds(self, name: str) -> bool:
        return name in self._held

    def renew(self) -> bool:
        """If due: give up the leases over the fair share, take free ones up to it.
        Whether it took a lease it did not hold (work to catch up now).

        A database error drops every lease before it is raised: what this process held
        another may hold now."""
        now = self.clock()
        if now < self._due:
            return False
        self._due = now + self.interval
        try:
            return self._rebalance()
        except BaseException:
            self._lost()
            self._due = now  # reconnect at the next call
            raise

    def close(self) -> None:
        """Release every lease (on shutdown, or while this process cannot reach the
        database): the other members take them at their next renewal; the next ``renew``
        here joins again."""
        self._held.clear()
        self._due = self.clock()
        self.backend.close()

    def _rebalance(self) -> bool:
        self.backend.join(self.group)
        share = fair_share(len(self.names), self.backend.members(self.group))
        for name in sorted(self._held, reverse=True)[: max(len(self._held) - share, 0)]:
            self.backend.release(name)
            self._held.discard(name)
            log.info("lease released", lease=name, share=share)
        took = False
        for name in self.names:
            if len(self._held) >= share:
                break
            if name not in self._held and self.backend.try_take(name):
                self._held.add(name)
                took = True
                log.info("lease taken", lease=name, share=share)
        return took

    def _lost(self) -> None:
        if self._held:
            log.warning("leases lost with their connection", leases=len(self._held))
        self._held.clear()
        # A broken connection may fail to close; it is gone either way.
        with contextlib.suppress(Exception):
            self.backend.close()


class Alone:
    """A backend for a process that holds everything (a daemon run without leases)."""

    def join(self, group: str) -> None:
        pass

    def members(self, group: str) -> int:
        return 1

    def try_take(self, name: str) -> bool:
        return True

    def release(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass

"""Leases shared between projector processes (projections/leases.py), on a fake of the
database's locks: whatever the order processes join, renew and die in, no lease is ever
held by two, and once renewals have run, every lease is held and no process holds more
than its fair share. A process whose connection fails holds nothing until it rejoins."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.leases import Leases, fair_share


@dataclass
class FakeLocks:
    """What the server keeps: who holds each lease, who is a member of each group."""

    holders: dict[str, int] = field(default_factory=dict)
    members: dict[str, set[int]] = field(default_factory=dict)

    def drop(self, member: int) -> None:
        """The member's connection ended: its locks are freed."""
        self.holders = {name: m for name, m in self.holders.items() if m != member}
        for group in self.members.values():
            group.discard(member)


class FakeBackend:
    """One process's lease connection to ``FakeLocks``. A ``severed`` connection (reset,
    its backend terminated) fails every call until it is closed and joined again."""

    def __init__(self, locks: FakeLocks, member: int) -> None:
        self.locks = locks
        self.member = member
        self.connected = False
        self.severed = False

    def _check(self) -> None:
        if self.severed or not self.connected:
            raise psycopg.OperationalError("connection lost")

    def join(self, group: str) -> None:
        if not self.connected:
            self.connected, self.severed = True, False
            self.locks.members.setdefault(group, set()).add(self.member)

    def members(self, group: str) -> int:
        self._check()
        return len(self.locks.members[group])

    def try_take(self, name: str) -> bool:
        self._check()
        holder = self.locks.holders.setdefault(name, self.member)
        return holder == self.member

    def release(self, name: str) -> None:
        self._check()
        if self.locks.holders.get(name) == self.member:
            del self.locks.holders[name]

    def sever(self) -> None:
        self.severed = True
        self.locks.drop(self.member)

    def close(self) -> None:
        if self.connected and not self.severed:
            self.locks.drop(self.member)
        self.connected = False


NAMES = ("case_status", "case_history", "processing_stats", "case_parties", "tracker", "chores")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _renew(leases: Leases) -> None:
    with contextlib.suppress(psycopg.OperationalError):
        leases.renew()


@given(
    st.integers(1, 6),
    st.lists(st.tuples(st.sampled_from(["renew", "kill", "sever", "tick"]), st.integers(0, 5))),
)
@settings(max_examples=200, deadline=None)
def test_no_lease_is_held_twice_and_renewals_share_them_fairly(
    processes: int, steps: list[tuple[str, int]]
) -> None:
    locks = FakeLocks()
    clock = Clock()
    backends = [FakeBackend(locks, m) for m in range(processes)]
    leases = [Leases(b, NAMES, interval=1.0, clock=clock) for b in backends]
    alive = set(range(processes))
    severed_at = dict.fromkeys(alive, 0.0)

    def check() -> None:
        """A process believes it holds exactly what the server says it holds, unless its
        connection is severed and it has not noticed yet: for at most a renewal interval
        (the position row lock is what keeps a page from being applied twice then)."""
        for member in alive:
            if not backends[member].severed:
                held = {n for n, m in locks.holders.items() if m == member}
                assert leases[member].held == held

    for action, index in steps:
        member = index % processes
        if action == "renew" and member in alive:
            _renew(leases[member])
            if backends[member].severed and clock.now >= severed_at[member] + 1.0:
                assert leases[member].held == frozenset(), "applies on a lost connection"
        elif action == "kill" and member in alive and len(alive) > 1:
            alive.discard(member)
            locks.drop(member)  # kill -9: the server frees its locks
        elif action == "sever" and member in alive and not backends[member].severed:
            backends[member].sever()
            severed_at[member] = clock.now
        else:
            clock.now += 1.0
        check()

    # Quiet: a few renewals each (the severed ones notice, rejoin and take their share).
    for _ in range(3):
        clock.now += 1.0
        for member in sorted(alive):
            _renew(leases[member])
            _renew(leases[member])
        check()
    share = fair_share(len(NAMES), len(alive))
    assert set(locks.holders) == set(NAMES), "a lease nobody holds"
    for member in alive:
        assert len(leases[member].held) <= share


def test_a_lost_connection_drops_every_lease_at_once() -> None:
    locks = FakeLocks()
    clock = Clock()
    backend = FakeBackend(locks, 0)
    leases = Leases(backend, NAMES, clock=clock)
    leases.renew()
    assert leases.held == set(NAMES)

    backend.sever()
    clock.now += 1.0
    with pytest.raises(psycopg.OperationalError):
        leases.renew()
    assert leases.held == frozenset()

    leases.renew()  # at the next call, not an interval later
    assert leases.held == set(NAMES)


def test_a_second_process_gets_its_share_within_two_renewals_and_all_when_the_first_dies() -> None:
    locks = FakeLocks()
    clock = Clock()
    first = Leases(FakeBackend(locks, 0), NAMES, clock=clock)
    second = Leases(FakeBackend(locks, 1), NAMES, clock=clock)
    first.renew()
    assert second.renew() is False  # all taken; the first gives up its extra at its renewal
    clock.now += 1.0
    first.renew()
    assert second.renew() is True
    assert len(first.held) == len(second.held) == 3

    locks.drop(0)  # kill -9
    clock.now += 1.0
    second.renew()
    assert second.held == set(NAMES)


@pytest.mark.parametrize(
    ("units", "members", "share"), [(7, 1, 7), (7, 2, 4), (7, 3, 3), (6, 4, 2), (7, 8, 1)]
)
def test_fair_share_covers_every_unit(units: int, members: int, share: int) -> None:
    assert fair_share(units, members) == share
    assert share * members >= units and math.ceil(units / members) == share

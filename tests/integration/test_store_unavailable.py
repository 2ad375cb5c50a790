"""The store raises the write side's StoreUnavailable, never the driver's errors, when the
database cannot be reached, so that the consumers retry exactly what is safe to retry."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest

from adapters.postgres.event_store import CaseStore
from consumers.ports import ConsumerOffset, StoreUnavailable
from tests.integration.tcp_proxy import TcpProxy
from tests.vault import TEST_VAULT

OFFSET = ConsumerOffset("group", "events", 0, 5)


def _claim(store: CaseStore) -> object:
    with store.dead_letters.claim_unpublished("events", 10, 1000) as claim:
        return claim.rows


CALLS: dict[str, Callable[[CaseStore], Any]] = {
    "load_readable": lambda s: s.load_readable([uuid4()]),
    "event_id_owners": lambda s: s.event_id_owners([uuid4()]),
    "erased_people": lambda s: s.erased_people(["12345678"]),
    "save": lambda s: s.save([], offsets=[OFFSET]),
    "stored_offsets": lambda s: s.stored_offsets("group", "events"),
    "stored_topic_ids": lambda s: s.stored_topic_ids("group", "events"),
    "rewind_offset": lambda s: s.rewind_offset(OFFSET, expected=9),
    "dead_lettered": lambda s: s.dead_lettered("kafka:events:0", [(1, b"x")]),
    "unpublished_dead_letters": lambda s: s.unpublished_dead_letters("events"),
    "claim_unpublished": _claim,
}


@pytest.fixture
def proxied(database_url: str, schema: str) -> Iterator[tuple[CaseStore, TcpProxy]]:
    proxy = TcpProxy(database_url).start()
    store = CaseStore(proxy.url, schema, TEST_VAULT)
    store.datastore.pool.timeout = 0.5  # fail fast when no connection can be had
    try:
        yield store, proxy
    finally:
        store.close()
        proxy.close()


@pytest.mark.parametrize("call", list(CALLS))
def test_an_unreachable_database_raises_store_unavailable(
    proxied: tuple[CaseStore, TcpProxy], call: str
) -> None:
    store, proxy = proxied
    CALLS[call](store)  # reachable: no error
    proxy.cut()
    with pytest.raises(StoreUnavailable):
        CALLS[call](store)
    proxy.restore()
    _retried(lambda: CALLS[call](store))  # nothing was committed: the retry goes through


def _retried(call: Callable[[], object], seconds: float = 15.0) -> None:
    """``call`` retried on StoreUnavailable, as the consumers do, until it goes through:
    the pool reconnects on its own schedule (psycopg_pool backs off from about a second
    after a failed attempt), which a 0.5 s wait for a connection may miss once."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            call()
            return
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)

"""Per-file estimates, cached: the expensive part depends only on category and quarter.

processing_stats reads histograms for a quarter; every open file of that
category and quarter gets the same figures, so they are computed once per
``ttl`` (in the thread pool, through the event store's synchronous pool)
and only ``months_elapsed`` and the language are per request. Each entry
remembers when its figures last changed: that feeds Last-Modified and the
ETag, so a poller sees a 200 only when the estimate really moved.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from adapters.http.settings import Clock
from adapters.postgres.event_store import CaseStore
from projections import processing_stats as ps
from projections import processing_stats_table

_MAX_ENTRIES = 2000


@dataclass(frozen=True)
class Cached:
    figures: dict[str, Any]  # estimate() without months_elapsed
    fingerprint: str
    changed_at: datetime
    expires: float  # monotonic


class Estimates:
    def __init__(self, store: CaseStore, clock: Clock, ttl_seconds: float) -> None:
        self.store = store
        self.clock = clock
        self.ttl = ttl_seconds
        self._cache: dict[tuple[str, str, date], Cached] = {}

    async def get(
        self, category: str, received_on: date, today: date, lang: str
    ) -> tuple[dict[str, Any], Cached]:
        key = (category, ps.quarter_months(received_on)[0], today)
        entry = self._cache.get(key)
        if entry is None or entry.expires < time.monotonic():
            figures = await run_in_threadpool(self._compute, category, received_on, today)
            entry = self._store(key, figures, entry)
        figures = entry.figures
        shown = {k: v for k, v in figures.items() if not k.startswith("text_")}
        shown["months_elapsed"] = ps.months_between(received_on, today)
        shown["text"] = figures["text_fr" if lang == "fr" else "text_en"]
        return shown, entry

    def _compute(self, category: str, received_on: date, today: date) -> dict[str, Any]:
        with self.store.datastore.transaction(commit=False) as curs:
            figures = processing_stats_table.estimate(
                curs, self.store.schema, category, received_on, today
            )
        figures.pop("months_elapsed", None)
        return figures

    def _store(
        self, key: tuple[str, str, date], figures: dict[str, Any], old: Cached | None
    ) -> Cached:
        digest = hashlib.blake2b(
            orjson.dumps(figures, option=orjson.OPT_SORT_KEYS), digest_size=8
        ).hexdigest()
        changed_at = old.changed_at if old and old.fingerprint == digest else self.clock()
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        entry = Cached(figures, digest, changed_at, time.monotonic() + self.ttl)
        self._cache[key] = entry
        return entry

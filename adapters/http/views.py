"""What a file read answers: the role-filtered view or the history, with validators.

Shared by the FastAPI routes (adapters.http.reads_api) and the pollers' fast
lane (adapters.http.fast_lane), so both answer byte for byte the same. The
view goes out as orjson bytes with the history spliced in as the JSON text
PostgreSQL produced; no pydantic on this path (the models document it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from adapters.http import caching
from adapters.http.problems import not_found, unauthenticated
from adapters.http.services import Services
from adapters.postgres.reads_store import FileRead
from projections import case_status
from projections.labels import text

_JSON = (b"content-type", b"application/json")


@dataclass(frozen=True)
class Conditions:
    if_none_match: str | None = None
    if_modified_since: str | None = None


@dataclass(frozen=True)
class Answer:
    status: int  # 200 or 304
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def read(
    found: Services, token: bytes, number: str, lang: str | None, now: datetime
) -> FileRead:
    """The caller's read of a file; 401 without a live session, 404 when not theirs."""
    found_read = await found.reads.read(token, number, lang, now)
    if found_read is None:
        raise unauthenticated()
    if found_read.role is None:
        raise not_found()
    return found_read


async def file_view(
    found: Services, read: FileRead, number: str, now: datetime, conditions: Conditions
) -> Answer:
    assert read.view is not None and read.role is not None and read.history is not None
    view = orjson.loads(read.view)
    today = now.date()
    shown: dict[str, Any] = case_status.presented(view, today, read.role)
    last_updated = shown["last_updated"]  # the role's own: a sponsor's moves less often
    fingerprint, last_modified = "-", _latest(last_updated, today)
    if view["status"] != "closed" and read.role != "sponsor" and "activities" in shown:
        estimate, cached = await found.estimates.get(
            view["category"], date.fromisoformat(view["received_on"]), today, read.language
        )
        shown["estimate"] = estimate
        fingerprint, last_modified = cached.fingerprint, max(last_modified, cached.changed_at)
    tag = caching.etag(
        "view", number, last_updated, read.role, read.language, today.isoformat(),
        fingerprint,
    )  # fmt: skip
    headers = caching.validators(tag, last_modified, found.settings.cache_max_age)
    if caching.not_modified(
        conditions.if_none_match, conditions.if_modified_since, tag, last_modified
    ):
        return Answer(304, headers, b"")
    shown["role"] = read.role
    shown["lang"] = read.language
    shown["history"] = orjson.Fragment(read.history)
    shown["contact"] = {"text": text("label.contact", read.language)}
    return Answer(200, [_JSON, *headers], orjson.dumps(shown))


async def file_history(
    found: Services, read: FileRead, number: str, conditions: Conditions
) -> Answer:
    assert read.view is not None and read.role is not None and read.history is not None
    last_updated = case_status.for_role(orjson.loads(read.view), read.role)["last_updated"]
    last_modified = datetime.fromisoformat(last_updated)
    tag = caching.etag("history", number, last_updated, read.role, read.language)
    headers = caching.validators(tag, last_modified, found.settings.cache_max_age)
    if caching.not_modified(
        conditions.if_none_match, conditions.if_modified_since, tag, last_modified
    ):
        return Answer(304, headers, b"")
    body = {
        "application_number": number,
        "lang": read.language,
        "history": orjson.Fragment(read.history),
    }
    return Answer(200, [_JSON, *headers], orjson.dumps(body))


def _latest(last_updated: str, today: date) -> datetime:
    """Days elapsed change at midnight, so the view is new at least once a day."""
    return max(datetime.fromisoformat(last_updated), caching.start_of(today))

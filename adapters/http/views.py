"""What a file read answers: the role-filtered view or the history, with validators.

Shared by the FastAPI routes (adapters.http.reads_api) and the pollers' fast
lane (adapters.http.fast_lane), so both answer byte for byte the same. The
view is assembled by projections.tracker_view, as ``casetrack status`` assembles
it, and goes out as orjson bytes with the history spliced in as the JSON text
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
from projections import case_status, tracker_view
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


async def answer(
    services: Services,
    token: bytes,
    number: str,
    lang: str | None,
    conditions: Conditions,
    *,
    history: bool,
) -> Answer:
    """What a read of file ``number``'s view (or of its ``history``) answers the session
    ``token``: 401 without a live session, 404 when the file is not theirs."""
    now = services.settings.clock()
    file_read = await read(services, token, number, lang, now)
    if history:
        return await file_history(services, file_read, number, conditions)
    return await file_view(services, file_read, number, now, conditions)


async def read(
    services: Services, token: bytes, number: str, lang: str | None, now: datetime
) -> FileRead:
    """The caller's read of a file; 401 without a live session, 404 when not theirs."""
    file_read = await services.reads.read(token, number, lang, now)
    if file_read is None:
        raise unauthenticated()
    if file_read.role is None:
        raise not_found()
    return file_read


@dataclass(frozen=True)
class Shown:
    """A file as the caller's role may see it, with what its validators are made of."""

    view: dict[str, Any]
    tag: str
    last_modified: datetime
    estimate_of: tracker_view.EstimateOf | None  # what the estimate is of (None: no estimate)
    fingerprint: str  # the estimate's figures' fingerprint ("-" without one)


async def shown_view(
    services: Services, file_read: FileRead, number: str, now: datetime, history: object
) -> Shown:
    """The role-filtered view of a file, as the API and the web page both show it (the one
    place that decides what a role sees, through projections.tracker_view): ``history``
    is the file's history as the reader wants it (JSON text as a Fragment, or parsed)."""
    assert file_read.view is not None and file_read.history is not None
    assert file_read.role is not None
    view = orjson.loads(file_read.view)
    today = now.date()
    wanted = tracker_view.estimate_of(view, file_read.role)
    estimate: dict[str, Any] | None = None
    fingerprint, changed_at = "-", None
    if wanted is not None:
        estimate, cached = await services.estimates.get(
            wanted.category, wanted.received_on, today, file_read.language
        )
        fingerprint, changed_at = cached.fingerprint, cached.changed_at
    shown = tracker_view.tracker_view(
        view, today, file_read.role, estimate, history,
        role=file_read.role, lang=file_read.language,
    )  # fmt: skip
    last_updated = shown["last_updated"]  # the role's own: a sponsor's moves less often
    last_modified = _latest(last_updated, today)
    if changed_at is not None:
        last_modified = max(last_modified, changed_at)
    # The history is another projection's, committed apart from the view: it is in the
    # validator itself, so a read between the two commits is never "not modified" after.
    tag = caching.etag(
        "view", number, last_updated, file_read.role, file_read.language, today.isoformat(),
        fingerprint, file_read.history,
    )  # fmt: skip
    shown["contact"] = {"text": text("label.contact", file_read.language)}
    return Shown(shown, tag, last_modified, wanted, fingerprint)


async def estimate_fingerprint(
    services: Services, wanted: tracker_view.EstimateOf | None, today: date, lang: str
) -> str:
    """The fingerprint ``shown_view`` would give the estimate of ``wanted`` today."""
    if wanted is None:
        return "-"
    _, cached = await services.estimates.get(wanted.category, wanted.received_on, today, lang)
    return cached.fingerprint


async def file_view(
    services: Services, file_read: FileRead, number: str, now: datetime, conditions: Conditions
) -> Answer:
    assert file_read.history is not None
    found = await shown_view(services, file_read, number, now, orjson.Fragment(file_read.history))
    headers = caching.validators(found.tag, found.last_modified, services.settings.cache_max_age)
    if caching.not_modified(
        conditions.if_none_match, conditions.if_modified_since, found.tag, found.last_modified
    ):
        return Answer(304, headers, b"")
    return Answer(200, [_JSON, *headers], orjson.dumps(found.view))


async def file_history(
    services: Services, file_read: FileRead, number: str, conditions: Conditions
) -> Answer:
    assert file_read.view is not None and file_read.history is not None
    assert file_read.role is not None
    last_updated = case_status.for_role(orjson.loads(file_read.view), file_read.role)[
        "last_updated"
    ]
    last_modified = datetime.fromisoformat(last_updated)
    tag = caching.etag(
        "history", number, last_updated, file_read.role, file_read.language, file_read.history
    )
    headers = caching.validators(tag, last_modified, services.settings.cache_max_age)
    if caching.not_modified(
        conditions.if_none_match, conditions.if_modified_since, tag, last_modified
    ):
        return Answer(304, headers, b"")
    body = {
        "application_number": number,
        "lang": file_read.language,
        "history": orjson.Fragment(file_read.history),
    }
    return Answer(200, [_JSON, *headers], orjson.dumps(body))


def _latest(last_updated: str, today: date) -> datetime:
    """Days elapsed change at midnight, so the view is new at least once a day."""
    return max(datetime.fromisoformat(last_updated), caching.start_of(today))

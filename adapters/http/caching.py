"""Conditional GETs: ETag and Last-Modified validators, 304 answers, Cache-Control.

A view's body is a function of a few inputs (its last visible change, the
caller's role and language, the day, the estimate's figures), so the ETag is
a hash of those inputs and a poller's revalidation costs one indexed query
and no body. If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time
from email.utils import format_datetime, parsedate_to_datetime


def etag(*parts: str) -> str:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()
    return f'W/"{digest}"'


def start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def validators(tag: str, last_modified: datetime, max_age: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"etag", tag.encode()),
        (b"last-modified", format_datetime(last_modified.astimezone(UTC), usegmt=True).encode()),
        (b"cache-control", f"private, max-age={max_age}, must-revalidate".encode()),
        (b"vary", b"Authorization"),
    ]


def not_modified(
    if_none_match: str | None, if_modified_since: str | None, tag: str, last_modified: datetime
) -> bool:
    if if_none_match is not None:
        wanted = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in wanted or tag.removeprefix("W/") in wanted
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= since

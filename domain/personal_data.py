"""Which values of a case event are personal data, whose they are, and what erasure leaves.

The log keeps personal data encrypted, one data key per person on a file (a *subject*:
the file's principal applicant, its sponsor, its representative), so that destroying a
subject's key erases what the log holds of them while every event stays in place
(crypto-shredding). This module only names the values: adapters.privacy encrypts them.

A subject owns the values of its part of ``application.received`` (every field of a
party, a representative's name, email and membership id); the principal applicant also
owns the free text of the file (a correspondence subject), which the producer writes
about them. Once a key is gone, each of its values reads as ERASED.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, Literal

ERASED: Final = "[erased]"
"""What a value whose key was destroyed reads as, everywhere (views, history, API)."""

Subject = Literal["principal_applicant", "sponsor", "representative"]
SUBJECTS: tuple[Subject, ...] = ("principal_applicant", "sponsor", "representative")

PARTY_FIELDS = ("uci", "given_name", "family_name", "date_of_birth", "email")
REPRESENTATIVE_FIELDS = ("name", "email", "membership_id")
FREE_TEXT_FIELDS = ("subject",)  # correspondence.sent

ERASURE_REASONS = ("request", "retention", "court_order", "other")
"""The reason codes a personal_data.erased event may carry (no free text: it could hold
the very data being erased)."""


def personal_paths(state: dict[str, Any], topic: str) -> Iterator[tuple[Subject, str, str]]:
    """(owner, holder, field) for every personal value present in an event's stored
    fields: the value is ``state[holder][field]``, or ``state[field]`` when holder is "".
    By the event's class (the end of its topic); values that are None are absent."""
    name = topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
    if name == "Received":
        for role, fields in (
            ("principal_applicant", PARTY_FIELDS),
            ("sponsor", PARTY_FIELDS),
            ("representative", REPRESENTATIVE_FIELDS),
        ):
            holder = state.get(role)
            if isinstance(holder, dict):
                for field in fields:
                    if holder.get(field) is not None:
                        yield role, role, field  # type: ignore[misc]
    elif name == "CorrespondenceSent":
        for field in FREE_TEXT_FIELDS:
            if state.get(field) is not None:
                yield "principal_applicant", "", field


def is_erased(value: object) -> bool:
    return value == ERASED

"""Seals the personal values of a stored event's fields, and opens them when it is read.

The mapper (adapters.postgres.event_codec) calls ``seal`` on the fields it is about to
store, with the keys of the event's subjects, and ``open`` on the fields it has just
parsed: each sealed value becomes its plaintext, or ERASED when its subject's key is
destroyed. Everything else in the event stays readable (statuses, dates, codes), so the
views that need no personal data never touch a key. Keys are fetched in bulk by subject
id (``prefetch``, from a page of rows about to be decoded) and kept only for that page:
a key another process destroys is gone from every reader by its next page, so nothing
read after an erasure shows the plaintext (a projection applies the erasure event itself).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from uuid import UUID

from adapters.privacy.field_cipher import (
    FieldDecryptError,
    is_sealed,
    open_sealed,
    place_of,
    seal,
    subject_hex,
)
from domain.personal_data import ERASED, personal_paths

KeyLoader = Callable[[set[UUID]], Mapping[UUID, "SubjectOf"]]
"""subject ids -> (case id, role, key or None when destroyed); a subject with no key row
is left out."""
SubjectOf = tuple[UUID, str, bytes | None]

_TOKEN_SUBJECT = re.compile(rb'"pd1:([0-9a-f]{32}):')
_PERSONAL_TOPICS = ("Received", "CorrespondenceSent")


class MissingKey(FieldDecryptError):
    """A sealed value whose subject has no key row at all (not an erasure: keys are
    destroyed in place, never deleted)."""


class PersonalDataCodec:
    def __init__(self, load_keys: KeyLoader) -> None:
        self._load = load_keys
        self._keys: dict[str, SubjectOf] = {}  # by subject id in hex, as tokens hold it

    @staticmethod
    def holds_personal_data(topic: str) -> bool:
        return topic.endswith(_PERSONAL_TOPICS)

    def seal(
        self,
        state: dict[str, Any],
        topic: str,
        case_id: UUID,
        version: int,
        key_of: Callable[[str], tuple[UUID, bytes]],
    ) -> None:
        """Replace each personal value of ``state`` (the event's fields, about to be
        stored) by its token, sealed with its owner's (subject id, key) from ``key_of``.
        Nested dicts are copied first: the domain event's own stay plaintext."""
        place = place_of(case_id, version)
        copied: set[str] = set()
        for owner, holder, field in list(personal_paths(state, topic)):
            subject, key = key_of(owner)
            target = state
            if holder:
                if holder not in copied:
                    state[holder] = dict(state[holder])
                    copied.add(holder)
                target = state[holder]
            value = target[field]
            target[field] = seal(
                key, subject, value if type(value) is str else str(value),
                place + f"{holder}.{field}".encode(),
            )  # fmt: skip

    def open(self, state: dict[str, Any], topic: str, case_id: UUID, version: int) -> None:
        """Replace each sealed value of ``state`` (just parsed) by its plaintext, or by
        ERASED when its key is destroyed; FieldDecryptError when one does not open. A key
        not prefetched is read alone, each time."""
        place = place_of(case_id, version)
        for owner, holder, field in list(personal_paths(state, topic)):
            target = state[holder] if holder else state
            token = target[field]
            if not is_sealed(token):
                continue  # a value stored before encryption (an unmigrated log)
            belongs_to, role, key = self._subject(subject_hex(token))
            if (belongs_to, role) != (case_id, owner):
                # Checked before the key: once a key is destroyed nothing else can tell
                # an erased value from a token pointed at another file's erased subject.
                raise FieldDecryptError(
                    f"a sealed value at {case_id.hex}/{version}/{holder}.{field} names a"
                    " subject of another file or role"
                )
            target[field] = (
                ERASED
                if key is None
                else open_sealed(key, token, place + f"{holder}.{field}".encode())
            )

    def prefetch(self, states: Iterable[bytes]) -> None:
        """Load, in one round trip, the keys of every subject sealed in these stored
        fields (call before decoding a page of rows); the keys of the page before are
        dropped."""
        found = {m for state in states for m in _TOKEN_SUBJECT.findall(state)}  # a few a case
        loaded = self._load({UUID(hex=m.decode()) for m in found}) if found else {}
        self._keys = {subject.hex: found for subject, found in loaded.items()}

    def _subject(self, subject_hex: str) -> SubjectOf:
        found = self._keys.get(subject_hex)
        if found is not None:
            return found
        try:
            subject = UUID(hex=subject_hex)
        except ValueError:
            raise FieldDecryptError("a sealed value has no subject id") from None
        loaded = self._load({subject})  # not kept: only a prefetch's keys are
        if subject not in loaded:
            raise MissingKey(f"subject {subject} has no data key row")
        return loaded[subject]

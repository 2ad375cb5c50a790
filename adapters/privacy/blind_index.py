"""Keyed blind indexes: HMAC-SHA-256 of a normalised personal value under a server key.

They let casetrack find a person (registration matching, erasure by UCI, the tombstone
of an erased person) without storing the value: equal inputs give equal indexes, and
without the key an index cannot be checked against guessed UCIs or birth dates. Each kind
of value has its own label, so a UCI's index never equals a name's. Names normalise as
registration compares them (domain.accounts), emails without case. Implements
domain.accounts.PersonIndex: case_parties holds these in place of the values.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

from domain.accounts import name_endings, normalize_email, normalize_name


class BlindIndex:
    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"casetrack blind index v1", hashlib.sha256).digest()

    def _of(self, kind: bytes, value: str) -> bytes:
        # hmac.digest: the same HMAC in one C call (a rebuild computes several a person)
        return hmac.digest(self._key, kind + b"\x00" + value.encode(), "sha256")[:16]

    def person(self, uci_or_email: str) -> bytes:
        """Who a person is across files: their UCI, or a representative's email."""
        value = uci_or_email.strip()
        if "@" in value:
            return self._of(b"email", normalize_email(value))
        return self._of(b"uci", value)

    def uci(self, uci: str) -> bytes:
        """Exactly as given (``person`` strips it first: erasure takes a UCI as typed)."""
        return self._of(b"uci", uci)

    def family_name(self, name: str) -> bytes:
        return self._of(b"family_name", normalize_name(name))

    def family_name_endings(self, full_name: str) -> list[bytes]:
        """Of each run of last words of a full name that registration takes for its
        family name (domain.accounts.name_endings): equal to ``family_name`` of that run."""
        return [self._of(b"family_name", run) for run in name_endings(full_name)]

    def date_of_birth(self, born: date) -> bytes:
        return self._of(b"date_of_birth", born.isoformat())

    def email(self, email: str) -> bytes:
        return self._of(b"email", normalize_email(email))

    def membership_id(self, membership_id: str) -> bytes:
        return self._of(b"membership_id", membership_id)

    def __repr__(self) -> str:
        return "BlindIndex(<key>)"

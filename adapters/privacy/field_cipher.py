"""One personal value encrypted with its subject's data key: AES-256-GCM, a fresh 96-bit
nonce per value, the value's place in the log as associated data.

A sealed value is a text token that stands where the plaintext stood in the event's JSON:
``pd1:<subject id, 32 hex>:<base64url(nonce || ciphertext || tag)>``. The subject id names
the key without revealing the person; the associated data (case id, case version, the
value's path in the event) binds the ciphertext to its place, so a value copied into
another event or another field does not decrypt. A wrong key or an altered token is a
FieldDecryptError, never garbage.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "pd1:"
_NONCE = 12
_SUBJECT_END = len(PREFIX) + 32


class FieldDecryptError(ValueError):
    """A sealed value that does not open with its key (altered, moved, or a wrong key).
    Names the place, never the value."""


def associated_data(case_id: UUID, case_version: int, path: str) -> bytes:
    return place_of(case_id, case_version) + path.encode()


def place_of(case_id: UUID, case_version: int) -> bytes:
    """The associated data's event part, ``<case id hex>/<version>/``: computed once for
    all the values of an event."""
    return b"%s/%d/" % (case_id.hex.encode(), case_version)


@lru_cache(maxsize=4096)
def _aead(key: bytes) -> AESGCM:
    return AESGCM(key)


def seal(key: bytes, subject: UUID, plaintext: str, aad: bytes) -> str:
    nonce = os.urandom(_NONCE)
    sealed = nonce + _aead(key).encrypt(nonce, plaintext.encode(), aad)
    return f"{PREFIX}{subject.hex}:{base64.urlsafe_b64encode(sealed).decode()}"


def is_sealed(value: object) -> bool:
    return type(value) is str and value.startswith(PREFIX)


def subject_of(token: str) -> UUID:
    """The subject whose key opens ``token``; FieldDecryptError when it is not a token."""
    try:
        return UUID(hex=subject_hex(token))
    except ValueError:
        raise FieldDecryptError("a sealed value has no subject id") from None


def subject_hex(token: str) -> str:
    """The token's subject id as written (32 characters, not yet checked to be hex);
    FieldDecryptError when the token has no room for one."""
    if len(token) <= _SUBJECT_END or token[_SUBJECT_END] != ":":
        raise FieldDecryptError("a sealed value has no subject id")
    return token[len(PREFIX) : _SUBJECT_END]


def open_sealed(key: bytes, token: str, aad: bytes) -> str:
    try:
        sealed = base64.urlsafe_b64decode(token[_SUBJECT_END + 1 :])
        if len(sealed) < _NONCE + 16:
            raise ValueError
        return _aead(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad).decode()
    except (InvalidTag, ValueError, UnicodeDecodeError):
        raise FieldDecryptError(
            f"a sealed value at {aad.decode(errors='replace')} does not open with its key"
            " (altered, moved to another place, or another key)"
        ) from None

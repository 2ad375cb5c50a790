"""The log's Ed25519 signing key: a file outside the database (docs/integrity.md).

Whoever can write the database must not be able to sign for it, so the private key lives
in a file (CASETRACK_SIGNING_KEY, by default ``signing.key`` under the casetrack home),
readable by its owner only, in the Go signed-note key format (domain/integrity/checkpoint.py).
The verifier key derived from it is public: auditors keep it.
"""

from __future__ import annotations

import os
from pathlib import Path

from domain.integrity.checkpoint import NoteError, generate_key, vkey_of

DEFAULT_NAME = "casetrack.local/case-log"


class SigningKeyError(RuntimeError):
    """No key, an unreadable one, or a refusal to overwrite one. Never holds the key."""


def create(path: Path, name: str = DEFAULT_NAME) -> str:
    """Write a new key to `path` (never over an existing one); its verifier key."""
    try:
        signer, verifier = generate_key(name)
    except NoteError as error:
        raise SigningKeyError(f"cannot make a key named {name!r}: {error}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(
            f"a signing key already exists at {path}; it signs every checkpoint so far, so it"
            " is never overwritten (to rotate, see docs/integrity.md)"
        ) from None
    with os.fdopen(fd, "w") as out:
        out.write(signer + "\n")
    return verifier


def signer(path: Path) -> str:
    """The signer key text in `path`."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise SigningKeyError(
            f"no signing key at {path}: create one with `casetrack audit keygen`"
        ) from None
    except OSError as error:
        raise SigningKeyError(f"cannot read the signing key at {path}: {error.strerror}") from None
    try:
        vkey_of(text)
    except NoteError:
        raise SigningKeyError(f"{path} does not hold a signing key") from None
    return text


def verifier(path: Path) -> str:
    """The public verifier key of the key in `path`."""
    return vkey_of(signer(path))

"""The key-encryption key (KEK) that wraps every data key, behind a two-method port.

Data keys are stored wrapped (adapters.postgres.data_keys); only a KEK unwraps them, and
the KEK lives outside the database: a stolen dump or backup holds ciphertext only. The
local implementation is a 256-bit key in a file (CASETRACK_KEK_FILE, generated under the
casetrack home when missing, readable by its owner only) and wraps with AES key wrap
(RFC 3394 with padding, RFC 5649). A KMS or Vault transit key fits the same port
(``wrap``/``unwrap``/``key_id``) later; `casetrack privacy rotate-kek` rewraps every key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

KEY_BYTES = 32


class KekError(ValueError):
    """A KEK file that is not a key, or a wrapped key this KEK did not wrap."""


class KeyEncryptionKey(Protocol):
    @property
    def key_id(self) -> str:
        """Names the KEK that wrapped a data key (stored beside it, never secret)."""
        ...

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes:
        """The data key; KekError when ``wrapped`` was not wrapped by this KEK."""
        ...


class LocalKek:
    """A KEK held in a file: 64 hex digits (32 bytes)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise KekError(f"a key-encryption key is {KEY_BYTES} bytes")
        self._key = key
        self.key_id = "local:" + hashlib.sha256(b"casetrack kek id" + key).hexdigest()[:16]

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap_with_padding(self._key, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap_with_padding(self._key, wrapped)
        except (InvalidUnwrap, ValueError):
            raise KekError(
                f"a data key was not wrapped by the key-encryption key {self.key_id}"
            ) from None

    def __repr__(self) -> str:  # never the key
        return f"LocalKek({self.key_id})"


def read_kek(path: Path) -> LocalKek:
    """The KEK in ``path``; KekError naming the file (never its content) when malformed."""
    try:
        text = path.read_text().strip()
        return LocalKek(bytes.fromhex(text))
    except FileNotFoundError:
        raise KekError(
            f"no key-encryption key at {path}: set CASETRACK_KEK_FILE, or run"
            " `casetrack privacy keygen` to make one"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise KekError(f"{path} does not hold a key-encryption key (64 hex digits)") from None


def local_kek(path: Path) -> LocalKek:
    """The KEK in ``path``, generated there first (mode 0600) when the file is missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole under another name, then linked into place: a process racing
        # this one reads either no file or the whole key, and only one key wins.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".kek-")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(KEY_BYTES) + "\n")
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return read_kek(path)

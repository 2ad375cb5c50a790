"""The server secret that keys rate-limit and lockout buckets (HMAC), so a copy of
those tables cannot be matched against guessed logins or addresses.

The configured key (CASETRACK_SECRET_KEY, adapters.settings) when there is one,
shared by every server process; otherwise a random key generated once in
``secret.key`` under the casetrack home, readable by its owner only. Every
process on the machine reads the same file, so their counters agree.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

FILE = "secret.key"
MIN_LENGTH = 32


class SecretError(ValueError):
    """The configured key, or the key file, is too short (the key is never shown)."""


def server_secret(configured: str | None, home: Path) -> bytes:
    """``configured`` (adapters.settings checked its length), else the key under ``home``."""
    if configured:
        return configured.encode()
    path = home / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as out:  # written whole before anyone reads a short file: see _read
        out.write(secrets.token_hex(32))
    return _read(path)


def _read(path: os.PathLike[str]) -> bytes:
    """The key in the file; a racing creator may not have written it yet, so wait briefly."""
    for _ in range(100):
        with open(path, "rb") as f:
            key = f.read().strip()
        if len(key) >= MIN_LENGTH:
            return key
        time.sleep(0.01)
    raise SecretError(f"{FILE} under the casetrack home is too short; delete it to regenerate")

"""Epochs of the log: the one sanctioned rewrite of stored events, and the note that signs it.

Sealing the personal data of a log written before casetrack encrypted it (docs/privacy.md)
changes the stored bytes of those events, so their leaves, their cases' chains and the
tree's root. That cannot be proven consistent with the checkpoints signed before (the old
leaves are hashes of the plaintext, which must not be kept), so the rewrite starts a new
*epoch* of the tree:

- before it, the whole log is verified against every checkpoint signed so far;
- the transition note, signed with the log's key, binds the old epoch's last tree (size,
  root) and every checkpoint signed in it (their notes' digest) to the new epoch's number;
- the new epoch's checkpoints carry the extension line ``casetrack-epoch N``, so no note of
  one epoch can be mistaken for another's tree at the same size.

An auditor holding a checkpoint of an earlier epoch finds it among the retired ones that a
signed transition names: the log verified against it when the rewrite began, and what
changed since is only what the transition says.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256

from domain.integrity.checkpoint import MalformedNote, open_note, sign_note

FIRST_EPOCH = 1
EXTENSION = "casetrack-epoch"
_TITLE = "casetrack epoch transition"
_REASON = re.compile(r"[a-z0-9_-]{1,40}")


def extension_lines(epoch: int) -> tuple[str, ...]:
    """The extension lines of a checkpoint of `epoch` (none in the first, as before epochs)."""
    return () if epoch == FIRST_EPOCH else (f"{EXTENSION} {epoch}",)


def epoch_of(extensions: Sequence[str]) -> int:
    """The epoch a checkpoint's extension lines name (the first when none does)."""
    for line in extensions:
        name, _, number = line.partition(" ")
        if name == EXTENSION and number.isdigit():
            return int(number)
    return FIRST_EPOCH


def retired_digest(notes: Sequence[str]) -> bytes:
    """SHA-256 over the retired checkpoints' signed notes, in size order, each preceded by
    its length: the transition commits to exactly this list."""
    digest = sha256()
    for note in notes:
        data = note.encode()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


@dataclass(frozen=True)
class Transition:
    """The move of `origin`'s log into `epoch`: the previous epoch ended with a tree of
    `previous_size` leaves and `previous_root`, and `retired` checkpoints were signed in it
    (`retired_digest` of their notes)."""

    origin: str
    epoch: int
    previous_size: int
    previous_root: bytes
    retired: int
    retired_sha256: bytes
    reason: str

    def text(self) -> str:
        root = base64.b64encode(self.previous_root).decode()
        return (
            f"{self.origin}\n{_TITLE}\nepoch {self.epoch}\n"
            f"replaces {self.previous_size} {root}\n"
            f"retires {self.retired} {self.retired_sha256.hex()}\n"
            f"reason {self.reason}\n"
        )


def sign_transition(transition: Transition, skey: str) -> str:
    if not _REASON.fullmatch(transition.reason):
        raise ValueError("a transition's reason is a short code (a-z, 0-9, _ and -)")
    return sign_note(transition.text(), skey)


def verify_transition(note: str | bytes, vkey: str) -> Transition:
    """The transition a note signed by `vkey` holds; NoteError when it does not verify or
    is not a transition (a checkpoint note never parses as one: its second line is a size)."""
    lines = open_note(note, vkey)[:-1].split("\n")
    try:
        origin, title, epoch, replaces, retires, reason = lines
        _, epoch_number = epoch.split(" ")
        replaces_word, size, root = replaces.split(" ")
        retires_word, count, digest = retires.split(" ")
        reason_word, reason_code = reason.split(" ")
        parsed = Transition(
            origin,
            int(epoch_number),
            int(size),
            base64.b64decode(root, validate=True),
            int(count),
            bytes.fromhex(digest),
            reason_code,
        )
    except ValueError:
        raise MalformedNote("the note is not an epoch transition") from None
    if (
        title != _TITLE
        or (replaces_word, retires_word, reason_word) != ("replaces", "retires", "reason")
        or parsed.text() != "\n".join(lines) + "\n"
    ):
        raise MalformedNote("the note is not an epoch transition")
    return parsed

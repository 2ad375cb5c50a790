"""Signed checkpoints: a tree size and root in the C2SP tlog-checkpoint format, signed as a
C2SP signed note with Ed25519 (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note).

The formats are those of Go's golang.org/x/mod/sumdb/note, so notes and keys interoperate
with the transparency-log ecosystem (witnesses, Go verifiers):

- note: the text (lines ending in "\\n"), a blank line, then one line per signature:
  "— <name> <base64(key id (4 bytes, big-endian) || signature)>\\n";
- key id: the first 4 bytes of SHA-256(name || "\\n" || 0x01 || Ed25519 public key);
- verifier key (public, to hand to auditors): "<name>+<key id, 8 hex>+<base64(0x01 || key)>";
- signer key (secret, kept in a file): "PRIVATE+KEY+<name>+<key id>+<base64(0x01 || seed)>";
- checkpoint text: origin line, decimal tree size line, base64 root hash line, then optional
  extension lines.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.integrity.merkle import HASH_SIZE

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\N{EM DASH} "
MAX_SIGNATURES = 100
_KEY_ID = struct.Struct(">I")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A note, key or checkpoint that cannot be trusted; the message says why."""


class MalformedKey(NoteError):
    """A key string that does not follow the vkey or skey format, or whose id does not match."""


class MalformedNote(NoteError):
    """Text that is not a signed note (no signature block, a bad line, bad characters)."""


class MalformedCheckpoint(NoteError):
    """A note whose text is not a checkpoint (origin, size and root lines)."""


class WrongKey(NoteError):
    """A note that carries no signature by the key it is checked against."""


class BadSignature(NoteError):
    """A signature by the expected key that does not match the note's text."""


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key and its key id."""

    name: str
    key_id: int
    public_key: bytes

    @property
    def vkey(self) -> str:
        return encode_vkey(self.name, self.public_key)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note."""

    name: str
    key_id: int
    signature: bytes


@dataclass(frozen=True)
class SignedNote:
    """A note's text (ending in a newline) and its signature lines, not yet verified."""

    text: str
    signatures: tuple[NoteSignature, ...]


@dataclass(frozen=True)
class Checkpoint:
    """The size and root hash of the log's Merkle tree, for the log named by `origin`."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The checkpoint body, ready to sign."""
        if not _valid_line(self.origin) or any(not _valid_line(e) for e in self.extensions):
            raise MalformedCheckpoint("the origin and extension lines must be non-empty lines")
        if not 0 <= self.size < 1 << 64 or len(self.root) != HASH_SIZE:
            raise MalformedCheckpoint("a checkpoint needs a u64 size and a 32-byte root")
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return "".join(line + "\n" for line in lines)


def key_id(name: str, public_key: bytes) -> int:
    """The 32-bit id of an Ed25519 key under this name."""
    digest = sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    (value,) = _KEY_ID.unpack(digest[:4])
    return int(value)


def encode_vkey(name: str, public_key: bytes) -> str:
    """The verifier key text of a named Ed25519 public key."""
    if not _valid_name(name) or len(public_key) != 32:
        raise MalformedKey("a key needs a name without spaces or '+' and a 32-byte public key")
    material = base64.b64encode(bytes([ALG_ED25519]) + public_key).decode()
    return f"{name}+{key_id(name, public_key):08x}+{material}"


def generate_key(name: str) -> tuple[str, str]:
    """A new Ed25519 key pair as (signer key, verifier key) texts. Keep the first secret."""
    if not _valid_name(name):
        raise MalformedKey(f"{name!r} is not a key name (no spaces or '+', not empty)")
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes_raw()
    material = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
    return f"PRIVATE+KEY+{name}+{key_id(name, public):08x}+{material}", encode_vkey(name, public)


def parse_vkey(vkey: str) -> Verifier:
    """The verifier that a vkey text names; MalformedKey unless its id matches its key."""
    name, kid, public_key = _parse_key(vkey, "verifier key")
    if key_id(name, public_key) != kid:
        raise MalformedKey(f"the verifier key's id {kid:08x} does not match its name and key")
    return Verifier(name, kid, public_key)


def vkey_of(skey: str) -> str:
    """The verifier key that belongs to a signer key."""
    name, private = _signer(skey)
    return encode_vkey(name, private.public_key().public_bytes_raw())


def sign_note(text: str, skey: str) -> str:
    """The note: `text` (non-empty lines, ending in a newline), signed with the signer key."""
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise MalformedNote("a note's text is non-empty lines, each ending in a newline")
    _check_characters(text)
    name, private = _signer(skey)
    kid = key_id(name, private.public_key().public_bytes_raw())
    blob = _KEY_ID.pack(kid) + private.sign(text.encode())
    return f"{text}\n{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode()}\n"


def sign_checkpoint(checkpoint: Checkpoint, skey: str) -> str:
    """The signed note of a checkpoint."""
    return sign_note(checkpoint.text(), skey)


def parse_note(note: str | bytes) -> SignedNote:
    """Split a note into its text and signature lines, without verifying anything."""
    if isinstance(note, bytes):
        try:
            note = note.decode()
        except UnicodeDecodeError:
            raise MalformedNote("the note is not UTF-8") from None
    _check_characters(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNote("the note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNote("the note has no signature lines, or its last line has no newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise MalformedNote(f"{line!r} is not a signature line")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            blob = b""
        if not _valid_name(name) or len(blob) < 5:
            raise MalformedNote(f"the signature line {line!r} is malformed")
        (kid,) = _KEY_ID.unpack(blob[:4])
        signatures.append(NoteSignature(name, int(kid), blob[4:]))
    if len(signatures) > MAX_SIGNATURES:
        raise MalformedNote(f"the note has more than {MAX_SIGNATURES} signatures")
    return SignedNote(text, tuple(signatures))


def open_note(note: str | bytes, vkey: str) -> str:
    """The text of a note once its signature by `vkey` is checked.

    WrongKey when no signature line names this key (right name and key id); BadSignature when
    one does but does not verify. Signatures by other keys are ignored, as in Go's note.Open.
    """
    verifier = parse_vkey(vkey)
    parsed = parse_note(note)
    mine = [s for s in parsed.signatures if s.name == verifier.name and s.key_id == verifier.key_id]
    if not mine:
        signers = ", ".join(f"{s.name}+{s.key_id:08x}" for s in parsed.signatures)
        raise WrongKey(
            f"the note is not signed by {verifier.name}+{verifier.key_id:08x} (signed by: "
            f"{signers})"
        )
    public = Ed25519PublicKey.from_public_bytes(verifier.public_key)
    for signature in mine:
        try:
            public.verify(signature.signature, parsed.text.encode())
        except InvalidSignature:
            raise BadSignature(
                f"the signature by {verifier.name}+{verifier.key_id:08x} does not match the "
                "note's text: the note was altered or signed by another key with the same id"
            ) from None
    return parsed.text


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint that a (verified) note text holds."""
    if not text.endswith("\n"):
        raise MalformedCheckpoint("the checkpoint text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpoint("a checkpoint needs origin, size and root lines")
    origin, size, root, *extensions = lines
    if not _valid_line(origin):
        raise MalformedCheckpoint("the checkpoint's origin line is empty")
    if not _DECIMAL.fullmatch(size) or int(size) >= 1 << 64:
        raise MalformedCheckpoint(f"the tree size {size!r} is not a decimal u64")
    try:
        root_hash = base64.b64decode(root, validate=True)
    except binascii.Error:
        root_hash = b""
    if len(root_hash) != HASH_SIZE or base64.b64encode(root_hash).decode() != root:
        raise MalformedCheckpoint(f"the root {root!r} is not a base64 SHA-256 hash")
    if any(not _valid_line(e) for e in extensions):
        raise MalformedCheckpoint("the checkpoint has an empty extension line")
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


def verify_checkpoint(note: str | bytes, vkey: str, origin: str | None = None) -> Checkpoint:
    """The checkpoint in a note signed by `vkey` (and for `origin`, when given)."""
    checkpoint = parse_checkpoint(open_note(note, vkey))
    if origin is not None and checkpoint.origin != origin:
        raise MalformedCheckpoint(
            f"the checkpoint is for log {checkpoint.origin!r}, not {origin!r}"
        )
    return checkpoint


def verify_checkpoint_any(note: str | bytes, vkeys: Sequence[str]) -> Checkpoint:
    """The checkpoint in a note signed by one of `vkeys` (the keys a log has signed with:
    before and after a rotation), whose origin line is that key's name: casetrack's
    checkpointer names its log after its key, so a note of another log signed by the same
    key is refused.

    WrongKey when none of the keys signed it; otherwise the first other error of a key that
    did (a failing signature by an accepted key says more than the others' absence)."""
    if not vkeys:
        raise ValueError("no verifier key to check the checkpoint with")
    absent: list[WrongKey] = []
    failed: list[NoteError] = []
    for vkey in vkeys:
        try:
            return verify_checkpoint(note, vkey, origin=parse_vkey(vkey).name)
        except WrongKey as error:
            absent.append(error)
        except MalformedNote:
            raise  # the same for every key
        except NoteError as error:
            failed.append(error)
    if failed:
        raise failed[0]
    if len(absent) == 1:
        raise absent[0]
    accepted = ", ".join(f"{v.name}+{v.key_id:08x}" for v in map(parse_vkey, vkeys))
    signers = ", ".join(f"{s.name}+{s.key_id:08x}" for s in parse_note(note).signatures)
    raise WrongKey(
        f"the note is not signed by any of the {len(vkeys)} accepted keys ({accepted});"
        f" signed by: {signers}"
    )


def _parse_key(text: str, what: str) -> tuple[str, int, bytes]:
    name, _, rest = text.partition("+")
    hex_id, _, encoded = rest.partition("+")
    try:
        material = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        material = b""
    if not _valid_name(name) or not _HEX8.fullmatch(hex_id) or not material:
        raise MalformedKey(f"the {what} is not <name>+<8 hex digits>+<base64 key>")
    if material[0] != ALG_ED25519 or len(material) != 33:
        raise MalformedKey(f"the {what} is not an Ed25519 key (algorithm 1, 32 bytes)")
    return name, int(hex_id, 16), material[1:]


def _signer(skey: str) -> tuple[str, Ed25519PrivateKey]:
    prefix = "PRIVATE+KEY+"
    if not skey.startswith(prefix):
        raise MalformedKey("the signer key does not start with PRIVATE+KEY+")
    name, kid, seed = _parse_key(skey[len(prefix) :], "signer key")
    private = Ed25519PrivateKey.from_private_bytes(seed)
    if key_id(name, private.public_key().public_bytes_raw()) != kid:
        raise MalformedKey(f"the signer key's id {kid:08x} does not match its name and key")
    return name, private


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _valid_line(line: str) -> bool:
    return bool(line) and "\n" not in line


def _check_characters(text: str) -> None:
    if any(c < " " and c != "\n" for c in text):
        raise MalformedNote("the note holds control characters")

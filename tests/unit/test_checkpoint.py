"""domain.integrity.checkpoint against Go's golang.org/x/mod/sumdb/note (note_test.go): its
PeterNeumann and EnochRoot keys and notes, and its ways of mangling them."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from domain.integrity import checkpoint as cp
from domain.integrity.checkpoint import (
    BadSignature,
    Checkpoint,
    MalformedCheckpoint,
    MalformedKey,
    MalformedNote,
    WrongKey,
)
from domain.integrity.merkle import EMPTY_ROOT

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
    "vqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTG"
    "wnWLox33WWd1RvMc+QQ=\n"
)
NOTE = TEXT + "\n" + PETER_SIG


def test_the_go_note_verifies() -> None:
    assert cp.open_note(NOTE, PETER_VKEY) == TEXT
    assert cp.open_note(NOTE.encode(), PETER_VKEY) == TEXT


def test_signing_reproduces_the_go_note_byte_for_byte() -> None:
    # Ed25519 is deterministic, so the same key and text give Go's exact signature.
    assert cp.sign_note(TEXT, PETER_SKEY) == NOTE
    assert cp.vkey_of(PETER_SKEY) == PETER_VKEY


def test_a_note_signed_twice_verifies_against_either_key() -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert cp.open_note(note, PETER_VKEY) == TEXT
    assert cp.open_note(note, ENOCH_VKEY) == TEXT


def test_the_key_ids_match_go() -> None:
    assert cp.parse_vkey(PETER_VKEY).key_id == 0xC74F20A3
    assert cp.parse_vkey(ENOCH_VKEY).key_id == 0xAF0CFE78


def test_an_altered_text_is_a_bad_signature() -> None:
    with pytest.raises(BadSignature, match="PeterNeumann"):
        cp.open_note(NOTE.replace("cryptography", "cryptographY"), PETER_VKEY)


def test_an_altered_signature_is_a_bad_signature() -> None:
    with pytest.raises(BadSignature):
        cp.open_note(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], PETER_VKEY)


def test_another_key_is_the_wrong_key() -> None:
    with pytest.raises(WrongKey, match="not signed by EnochRoot"):
        cp.open_note(NOTE, ENOCH_VKEY)
    _, other = cp.generate_key("PeterNeumann")
    with pytest.raises(WrongKey):
        cp.open_note(NOTE, other)


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name " + PETER_SIG.split()[-1] + "\n",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(MalformedNote):
        cp.open_note(note, PETER_VKEY)


def test_a_note_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(MalformedNote, match="UTF-8"):
        cp.open_note(b"\xff" + NOTE.encode(), PETER_VKEY)


def test_mangled_verifier_keys_are_refused() -> None:
    """As Go's TestNewVerifier: every proper substring, and every one-byte increment."""
    for i in range(len(PETER_VKEY)):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(MalformedKey):
                    cp.parse_vkey(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(MalformedKey):
            cp.parse_vkey(mangled)
    with pytest.raises(MalformedKey):  # wrong key length, with adjusted key id
        cp.parse_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(MalformedKey):  # unknown algorithm, with adjusted key id
        cp.parse_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_mangled_signer_keys_are_refused() -> None:
    for i in range(len(PETER_SKEY)):
        mangled = PETER_SKEY[:i] + chr(ord(PETER_SKEY[i]) + 1) + PETER_SKEY[i + 1 :]
        with pytest.raises(MalformedKey):
            cp.sign_note(TEXT, mangled)
    with pytest.raises(MalformedKey):
        cp.sign_note(TEXT, PETER_SKEY[1:])


def test_generated_keys_sign_and_verify() -> None:
    skey, vkey = cp.generate_key("casetrack.example/log")
    assert cp.vkey_of(skey) == vkey
    assert vkey.startswith("casetrack.example/log+")
    assert cp.open_note(cp.sign_note(TEXT, skey), vkey) == TEXT


def test_a_checkpoint_round_trips_through_a_signed_note() -> None:
    skey, vkey = cp.generate_key("casetrack.example/log")
    checkpoint = Checkpoint("casetrack.example/log", 8, EMPTY_ROOT)
    note = cp.sign_checkpoint(checkpoint, skey)
    assert note.startswith(
        "casetrack.example/log\n8\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— "
    )
    assert cp.verify_checkpoint(note, vkey) == checkpoint
    assert cp.verify_checkpoint(note, vkey, origin="casetrack.example/log") == checkpoint
    with pytest.raises(MalformedCheckpoint, match="not 'other'"):
        cp.verify_checkpoint(note, vkey, origin="other")
    with pytest.raises(BadSignature):
        cp.verify_checkpoint(note.replace("\n8\n", "\n9\n"), vkey)


def test_checkpoint_extension_lines_are_kept() -> None:
    text = "origin\n3\n" + base64.b64encode(EMPTY_ROOT).decode() + "\nextra one\n"
    assert cp.parse_checkpoint(text).extensions == ("extra one",)


@pytest.mark.parametrize(
    "text",
    [
        "origin\n3\n",
        "\n3\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "origin\n03\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "origin\n-3\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "origin\n3\n" + base64.b64encode(EMPTY_ROOT[:31]).decode() + "\n",
        "origin\n3\n" + base64.b64encode(EMPTY_ROOT).decode(),
        "origin\n3\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(MalformedCheckpoint):
        cp.parse_checkpoint(text)


def test_the_package_imports_nothing_of_casetrack_or_its_heavy_dependencies() -> None:
    """An auditor imports domain.integrity with only the standard library and cryptography."""
    code = (
        "import sys, domain.integrity.checkpoint, domain.integrity.leaves;"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    for heavy in ("eventsourcing", "psycopg", "pydantic", "adapters", "projections", "consumers"):
        assert f"'{heavy}'" not in loaded


def test_a_checkpoint_verifies_under_any_of_several_keys_for_that_keys_log() -> None:
    """After a rotation an auditor accepts the old and the new key; each note names its
    key's log in its origin line (the checkpointer writes it so)."""
    old, old_v = cp.generate_key("casetrack.example/log")
    new, new_v = cp.generate_key("casetrack.example/log")
    checkpoint = Checkpoint("casetrack.example/log", 8, EMPTY_ROOT)
    for skey in (old, new):
        assert cp.verify_checkpoint_any(cp.sign_checkpoint(checkpoint, skey), [old_v, new_v]) == (
            checkpoint
        )
    stranger, stranger_v = cp.generate_key("casetrack.example/log")
    with pytest.raises(WrongKey, match="not signed by any of the 2 accepted keys") as refused:
        cp.verify_checkpoint_any(cp.sign_checkpoint(checkpoint, stranger), [old_v, new_v])
    assert f"signed by: casetrack.example/log+{cp.parse_vkey(stranger_v).key_id:08x}" in str(
        refused.value
    )
    with pytest.raises(WrongKey) as alone:  # one key: the message names it
        cp.verify_checkpoint_any(cp.sign_checkpoint(checkpoint, stranger), [old_v])
    assert f"not signed by casetrack.example/log+{cp.parse_vkey(old_v).key_id:08x} (" in str(
        alone.value
    )


def test_a_checkpoint_of_another_log_signed_by_an_accepted_key_is_refused() -> None:
    skey, vkey = cp.generate_key("casetrack.example/log")
    other_log = cp.sign_checkpoint(Checkpoint("elsewhere.example/log", 8, EMPTY_ROOT), skey)
    with pytest.raises(MalformedCheckpoint, match=r"not 'casetrack\.example/log'"):
        cp.verify_checkpoint_any(other_log, [vkey])


def test_a_failing_signature_by_an_accepted_key_is_named_before_another_keys_absence() -> None:
    old, old_v = cp.generate_key("casetrack.example/log")
    _, new_v = cp.generate_key("casetrack.example/log")
    note = cp.sign_checkpoint(Checkpoint("casetrack.example/log", 8, EMPTY_ROOT), old)
    with pytest.raises(BadSignature):
        cp.verify_checkpoint_any(note.replace("\n8\n", "\n9\n"), [new_v, old_v])
    with pytest.raises(ValueError, match="no verifier key"):
        cp.verify_checkpoint_any(note, [])

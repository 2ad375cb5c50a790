"""Tracker account rules that need no I/O: matching a registration, codes, tokens, passwords.

A registration is answered the same way whether or not it matches (no
enumeration); ``delivery`` only decides whether a code goes out, and where.
Names compare after Unicode NFC normalisation, whitespace trimming and case
folding (accents still matter); UCIs, dates of birth and membership ids
compare exactly; emails without regard to case. The file's side is held as keyed
blind indexes of those normalised values (``PersonIndex``), never the values: the
registration's details are indexed with the same key and the indexes compared.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol, TypeVar

from domain.case import Case
from domain.personal_data import is_erased

CODE_DIGITS = 8
# A code's guesses in all, from everywhere: 25 in 10^8. Each address gets 5 before it
# must wait (the API's code_guesses backoff), so one guesser cannot use them all up and
# void the owner's code.
CODE_MAX_ATTEMPTS = 25
PASSWORD_MIN = 12
PASSWORD_MAX = 128
_MIN_SCORE = 3  # zxcvbn: at least 10^8 guesses

SESSION_PREFIX = "cts_"
AUDITOR_PREFIX = "cta_"
_TOKEN = re.compile(r"(cts|cta)_[A-Za-z0-9_-]{43}")
CODE = re.compile(f"[0-9]{{{CODE_DIGITS}}}")


class PersonIndex(Protocol):
    """Keyed blind indexes (adapters.privacy.blind_index): equal values give equal
    indexes, and without the key an index tells nothing of its value. Each method
    normalises as registration compares (see the module's docstring)."""

    def uci(self, uci: str) -> bytes: ...

    def family_name(self, name: str) -> bytes:
        """Of ``normalize_name(name)``."""
        ...

    def family_name_endings(self, full_name: str) -> list[bytes]:
        """One per ``name_endings(full_name)``: those runs, already normalised."""
        ...

    def date_of_birth(self, born: date) -> bytes: ...

    def email(self, email: str) -> bytes: ...

    def membership_id(self, membership_id: str) -> bytes: ...


@dataclass(frozen=True)
class FileParty:
    """One person on a file as the case_parties view holds them: blind indexes of the
    values registration compares, never the values. ``family_names`` holds one index, or
    for a representative (whose file holds one full name) one per ending of that name
    that registration accepts as the family name."""

    role: str
    preferred_language: str
    uci: bytes | None = None
    family_names: tuple[bytes, ...] = ()
    date_of_birth: bytes | None = None
    email: bytes | None = None  # also tells whether there is an email to send a code to
    membership_id: bytes | None = None  # representatives only


def file_party(
    index: PersonIndex,
    role: str,
    preferred_language: str,
    *,
    uci: str | None = None,
    family_name: str | None = None,
    date_of_birth: date | None = None,
    email: str | None = None,
    name: str | None = None,
    membership_id: str | None = None,
) -> FileParty:
    """A person on a file, indexed: applicants and sponsors by UCI, family name and date
    of birth, representatives by email, membership id and their name's endings."""
    if role == "representative":
        family_names = tuple(index.family_name_endings(name or ""))
    else:
        family_names = (index.family_name(family_name or ""),)
    return FileParty(
        role,
        preferred_language,
        _indexed(index.uci, uci),
        family_names,
        _indexed(index.date_of_birth, date_of_birth),
        _indexed(index.email, email),
        _indexed(index.membership_id, membership_id),
    )


_V = TypeVar("_V")


def _indexed(of: Callable[[_V], bytes], value: _V | None) -> bytes | None:
    return None if value is None else of(value)


@dataclass(frozen=True)
class Registration:
    role: str
    family_name: str
    uci: str | None = None
    date_of_birth: date | None = None
    email: str | None = None
    membership_id: str | None = None

    @property
    def login(self) -> str:
        return login_of(self.role, self.uci, self.email)


@dataclass(frozen=True)
class Delivery:
    """Where a registration's code goes: to the email on file of the role ``to`` (the
    person's own, or their representative's), in the file's language."""

    login: str
    role: str
    to: str
    language: str


def login_of(role: str, uci: str | None, email: str | None) -> str:
    """Applicants and sponsors sign in with their UCI, representatives with their email."""
    if role == "representative":
        return normalize_email(email or "")
    return uci or ""


def normalize_name(value: str) -> str:
    return " ".join(unicodedata.normalize("NFC", value).split()).casefold()


def normalize_email(value: str) -> str:
    return value.strip().casefold()


def normalize_login(value: str) -> str:
    """A login as typed: a UCI stays as it is, an email is case-folded."""
    value = value.strip()
    return normalize_email(value) if "@" in value else value


def delivery(
    registration: Registration, parties: Sequence[FileParty], index: PersonIndex
) -> Delivery | None:
    """The code's delivery when the registration matches the file exactly, else None.

    Codes for the principal applicant go to the representative when the file
    has one; a person without an email on file (and no representative to
    relay) cannot register. ``index`` is the key the file's indexes were made with.
    """
    by_role = {p.role: p for p in parties}
    party = by_role.get(registration.role)
    if party is None or not _matches(registration, party, index):
        return None
    to = registration.role
    if registration.role == "principal_applicant" and "representative" in by_role:
        to = "representative"
    if by_role[to].email is None:
        return None
    return Delivery(registration.login, registration.role, to, party.preferred_language)


def _matches(registration: Registration, party: FileParty, index: PersonIndex) -> bool:
    if not normalize_name(registration.family_name):
        return False
    if index.family_name(registration.family_name) not in party.family_names:
        return False
    if registration.role == "representative":
        return (
            party.email is not None
            and registration.email is not None
            and index.email(registration.email) == party.email
            and _indexed(index.membership_id, registration.membership_id) == party.membership_id
        )
    return (
        registration.uci is not None
        and index.uci(registration.uci) == party.uci
        and _indexed(index.date_of_birth, registration.date_of_birth) == party.date_of_birth
    )


def name_endings(full_name: str) -> list[str]:
    """A representative's file holds one full name: registration accepts as their family
    name any run of its last words, "Pelletier" or "André Pelletier" of "Marc André
    Pelletier" (normalised), never part of a word."""
    words = normalize_name(full_name).split(" ")
    return [" ".join(words[start:]) for start in range(len(words)) if words[start]]


def email_on_file(case: Case | None, role: str) -> str | None:
    """The email a code for ``role`` goes to, None when the file has none (or it is
    erased): read from the case, since the case_parties view keeps only indexes."""
    holder = getattr(case, role, None) if case is not None and role in _ROLES else None
    email = getattr(holder, "email", None)
    return None if not email or is_erased(email) else str(email)


def family_name_on_file(case: Case | None, role: str) -> str:
    """The party's family name ("" when none, or erased): a representative's file holds
    one name, whose last word stands for it."""
    holder = getattr(case, role, None) if case is not None and role in _ROLES else None
    if holder is None:
        return ""
    if role == "representative":
        words = str(holder.name).split()
        name = words[-1] if words else ""
    else:
        name = str(holder.family_name)
    return "" if is_erased(name) else name


_ROLES = ("principal_applicant", "sponsor", "representative")


# ---------------------------------------------------------------- codes and tokens


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_token(prefix: str) -> str:
    """A bearer credential: a prefix naming its kind and 256 random bits."""
    return prefix + secrets.token_urlsafe(32)


def is_token(value: str) -> bool:
    return _TOKEN.fullmatch(value) is not None


def token_digest(token: str) -> bytes:
    """What is stored for a token: its SHA-256 (256 random bits need no slow hash)."""
    return hashlib.sha256(token.encode()).digest()


def bucket_digest(key: bytes, value: str) -> bytes:
    """Rate-limit and lockout keys are stored as an HMAC under the server secret:
    identifiers are personal data, and a bare hash of a UCI is found by trying them all."""
    return hmac.new(key, value.encode(), hashlib.sha256).digest()


# ---------------------------------------------------------------- passwords


class WeakPassword(ValueError):
    """The password does not meet the policy; the message says which rule, never the value."""


def check_password(password: str, login: str = "", names: Sequence[str] = ()) -> None:
    """12 to 128 characters, 5 different, not containing the login or a family name on
    file, and hard to guess.

    "Hard to guess" is zxcvbn's estimate (its lists of common passwords, words,
    names, keyboard patterns, dates and repeats): at least 10^8 guesses (score 3).
    """
    _check_length(password)
    check_names(password, (login, *names))
    _check_strength(password)


def check_shape(password: str, login: str = "") -> None:
    """Every rule but the names on file (those wait until the caller has shown a code)."""
    check_password(password, login)


def _check_length(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise WeakPassword(f"the password must have at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise WeakPassword(f"the password must have at most {PASSWORD_MAX} characters")
    if len(set(password)) < 5:
        raise WeakPassword("the password must use at least 5 different characters")


def _check_strength(password: str) -> None:
    # Imported here: its word lists cost every process that reads FileParty ~40 ms and
    # memory, and only the API's password routes need them.
    from zxcvbn import zxcvbn

    # user_inputs stays empty: zxcvbn keeps them in a module global, shared by threads.
    if zxcvbn(password, max_length=PASSWORD_MAX)["score"] < _MIN_SCORE:
        raise WeakPassword("the password is too common or too easy to guess")


def check_names(password: str, names: Sequence[str]) -> None:
    """Not containing the login or a family name on file (only after the caller has shown
    a valid code: the answer would otherwise confirm a guessed name)."""
    compact = normalize_name(password).replace(" ", "")
    for personal in names:
        folded = normalize_name(personal).replace(" ", "")
        if len(folded) >= 3 and folded in compact:
            raise WeakPassword("the password must not contain your login or name")

"""domain.accounts: who gets a code and where, code and token shapes, the password policy."""

from __future__ import annotations

from datetime import date

import pytest

from domain import accounts
from domain.accounts import FileParty, Registration

APPLICANT = FileParty(
    role="principal_applicant",
    preferred_language="fr",
    uci="1234567890",
    family_name="Côté",
    date_of_birth=date(1990, 5, 17),
    email="pa@example.com",
)
SPONSOR = FileParty(
    role="sponsor",
    preferred_language="fr",
    uci="87654321",
    family_name="Dela Cruz",
    date_of_birth=date(1985, 1, 2),
)
REPRESENTATIVE = FileParty(
    role="representative",
    preferred_language="fr",
    email="Rep@Firm.example.ca",
    name="Marc-André Pelletier",
    membership_id="BQ-221874",
)


def applicant(**changes: object) -> Registration:
    fields: dict[str, object] = {
        "role": "principal_applicant",
        "family_name": "Côté",
        "uci": "1234567890",
        "date_of_birth": date(1990, 5, 17),
    }
    fields.update(changes)
    return Registration(**fields)  # type: ignore[arg-type]


def test_an_exact_match_gets_a_code_at_the_persons_email_in_the_files_language() -> None:
    found = accounts.delivery(applicant(), [APPLICANT, SPONSOR])
    assert found == accounts.Delivery("1234567890", "principal_applicant", "pa@example.com", "fr")


def test_names_compare_without_case_or_extra_spaces_but_with_accents() -> None:
    assert accounts.delivery(applicant(family_name="  CÔTÉ "), [APPLICANT])
    assert accounts.delivery(applicant(family_name="Cote"), [APPLICANT]) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"uci": "1234567891"},
        {"date_of_birth": date(1990, 5, 18)},
        {"family_name": "Côtés"},
        {"role": "sponsor"},
    ],
)
def test_any_difference_gets_nothing(changes: dict[str, object]) -> None:
    assert accounts.delivery(applicant(**changes), [APPLICANT, SPONSOR]) is None


def test_no_email_on_file_gets_nothing_unless_a_representative_relays() -> None:
    sponsor = Registration(
        role="sponsor", family_name="dela cruz", uci="87654321", date_of_birth=date(1985, 1, 2)
    )
    assert accounts.delivery(sponsor, [APPLICANT, SPONSOR]) is None
    relayed = accounts.delivery(applicant(), [APPLICANT, SPONSOR, REPRESENTATIVE])
    assert relayed is not None and relayed.email == "Rep@Firm.example.ca"


def test_representatives_match_on_family_name_email_and_membership_id() -> None:
    rep = Registration(
        role="representative",
        family_name="pelletier",
        email="rep@firm.example.ca",
        membership_id="BQ-221874",
    )
    found = accounts.delivery(rep, [APPLICANT, REPRESENTATIVE])
    assert found is not None and found.login == "rep@firm.example.ca"
    for wrong in (
        {"membership_id": None},
        {"membership_id": "BQ-221875"},
        {"family_name": "André Pelletie"},
        {"family_name": "lletier"},
        {"email": "other@firm.example.ca"},
    ):
        changed = Registration(**{**rep.__dict__, **wrong})  # type: ignore[arg-type]
        assert accounts.delivery(changed, [REPRESENTATIVE]) is None, wrong


def test_codes_tokens_and_logins() -> None:
    codes = {accounts.new_code() for _ in range(50)}
    assert all(accounts.CODE.fullmatch(c) for c in codes) and len(codes) > 40
    token = accounts.new_token(accounts.SESSION_PREFIX)
    assert accounts.is_token(token) and token.startswith("cts_")
    assert not accounts.is_token(token + "x") and not accounts.is_token("cts_' OR 1=1")
    assert accounts.token_digest(token) != accounts.token_digest(accounts.new_token("cts_"))
    assert accounts.normalize_login(" Rep@Firm.Example.CA ") == "rep@firm.example.ca"
    assert accounts.normalize_login("12345678") == "12345678"


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short pass", "at least 12"),
        ("x" * 129, "at most 128"),
        ("abababababab", "5 different"),
        ("Password1234", "too common"),
        ("qwerty123456789", "too common"),
        ("football12345", "too common"),
        ("trustno1trustno1", "too common"),
        ("my uci 1234567890 is secret", "login or name"),
        ("I am Dela Cruz forever", "login or name"),
    ],
)
def test_weak_passwords_are_refused_with_the_rule(password: str, rule: str) -> None:
    with pytest.raises(accounts.WeakPassword, match=rule) as caught:
        accounts.check_password(password, "1234567890", ("Dela Cruz",))
    assert password not in str(caught.value)


def test_a_reasonable_passphrase_passes() -> None:
    accounts.check_password("correct horse battery staple", "1234567890", ("Dela Cruz",))


def test_the_family_name_on_file_is_the_persons_or_a_representatives_last_word() -> None:
    assert accounts.family_name_on_file(SPONSOR) == "Dela Cruz"
    assert accounts.family_name_on_file(REPRESENTATIVE) == "Pelletier"

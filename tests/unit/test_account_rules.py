"""domain.accounts: who gets a code and where, code and token shapes, the password policy."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.privacy.blind_index import BlindIndex
from domain import accounts
from domain import catalogue as t
from domain.accounts import Registration
from tests.unit.builders import apply, cmd, person

INDEX = BlindIndex(b"unit-test blind index secret")

APPLICANT = accounts.file_party(
    INDEX,
    "principal_applicant",
    "fr",
    uci="1234567890",
    family_name="Côté",
    date_of_birth=date(1990, 5, 17),
    email="pa@example.com",
)
SPONSOR = accounts.file_party(
    INDEX,
    "sponsor",
    "fr",
    uci="87654321",
    family_name="Dela Cruz",
    date_of_birth=date(1985, 1, 2),
)
REPRESENTATIVE = accounts.file_party(
    INDEX,
    "representative",
    "fr",
    email="Rep@Firm.example.ca",
    name="Marc-André Pelletier",
    membership_id="BQ-221874",
)


def delivery(registration: Registration, *parties: accounts.FileParty) -> accounts.Delivery | None:
    return accounts.delivery(registration, parties, INDEX)


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
    found = delivery(applicant(), APPLICANT, SPONSOR)
    assert found == accounts.Delivery(
        "1234567890", "principal_applicant", "principal_applicant", "fr"
    )


def test_names_compare_without_case_or_extra_spaces_but_with_accents() -> None:
    assert delivery(applicant(family_name="  CÔTÉ "), APPLICANT)
    assert delivery(applicant(family_name="Cote"), APPLICANT) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"uci": "1234567891"},
        {"uci": " 1234567890"},
        {"date_of_birth": date(1990, 5, 18)},
        {"family_name": "Côtés"},
        {"family_name": "  "},
        {"role": "sponsor"},
    ],
)
def test_any_difference_gets_nothing(changes: dict[str, object]) -> None:
    assert delivery(applicant(**changes), APPLICANT, SPONSOR) is None


def test_another_key_matches_nothing() -> None:
    """The indexes are keyed: the same details under another server secret do not match."""
    assert accounts.delivery(applicant(), [APPLICANT], BlindIndex(b"another secret")) is None


def test_no_email_on_file_gets_nothing_unless_a_representative_relays() -> None:
    sponsor = Registration(
        role="sponsor", family_name="dela cruz", uci="87654321", date_of_birth=date(1985, 1, 2)
    )
    assert delivery(sponsor, APPLICANT, SPONSOR) is None
    relayed = delivery(applicant(), APPLICANT, SPONSOR, REPRESENTATIVE)
    assert relayed is not None and relayed.to == "representative"
    assert relayed.role == "principal_applicant" and relayed.login == "1234567890"


def test_representatives_match_on_family_name_email_and_membership_id() -> None:
    rep = Registration(
        role="representative",
        family_name="pelletier",
        email="rep@firm.example.ca",
        membership_id="BQ-221874",
    )
    found = delivery(rep, APPLICANT, REPRESENTATIVE)
    assert found is not None and found.login == "rep@firm.example.ca"
    assert found.to == "representative"
    assert delivery(
        Registration(**{**rep.__dict__, "family_name": "Marc-andré  PELLETIER"}), REPRESENTATIVE
    )
    for wrong in (
        {"membership_id": None},
        {"membership_id": "BQ-221875"},
        {"family_name": "André Pelletie"},
        {"family_name": "lletier"},
        {"family_name": "André Pelletier"},
        {"email": "other@firm.example.ca"},
    ):
        changed = Registration(**{**rep.__dict__, **wrong})  # type: ignore[arg-type]
        assert delivery(changed, REPRESENTATIVE) is None, wrong


def test_a_representative_without_membership_id_matches_a_registration_without_one() -> None:
    on_file = accounts.file_party(
        INDEX, "representative", "en", email="rep@example.com", name="Ann de la Tour"
    )
    rep = Registration(role="representative", family_name="De la Tour", email="rep@example.com")
    assert delivery(rep, on_file) is not None
    assert delivery(Registration(**{**rep.__dict__, "membership_id": "X1"}), on_file) is None


def test_a_name_ends_in_each_run_of_its_last_words() -> None:
    assert accounts.name_endings(" Marc  André\tPELLETIER ") == [
        "marc andré pelletier",
        "andré pelletier",
        "pelletier",
    ]
    assert accounts.name_endings("  ") == []


# The rules as they were when case_parties held the values: the indexes must agree with them.
def _plain_family_name_of(family_name: str, full_name: str) -> bool:
    family, full = accounts.normalize_name(family_name), accounts.normalize_name(full_name)
    return bool(family) and (full == family or full.endswith(" " + family))


_words = st.lists(
    st.sampled_from(["de", "la", "Côté", "CÔTÉ", "cote", "Cote\u0301", "ß", "SS", "Tour", "x"]),
    max_size=4,
)
_spaces = st.sampled_from([" ", "  ", "\t", "\u00a0"])


@settings(max_examples=300, deadline=None)
@given(_words, _words, _spaces, _spaces)
def test_indexed_names_match_exactly_as_the_plain_values_did(
    full: list[str], family: list[str], sep: str, pad: str
) -> None:
    full_name, family_name = sep.join(full), pad + sep.join(family) + pad
    rep_on_file = accounts.file_party(
        INDEX, "representative", "fr", email="r@example.ca", name=full_name
    )
    rep = Registration("representative", family_name, email="R@example.ca")
    assert (delivery(rep, rep_on_file) is not None) == _plain_family_name_of(family_name, full_name)
    party = accounts.file_party(
        INDEX, "sponsor", "fr", uci="1", family_name=full_name, date_of_birth=date(2000, 1, 1),
        email="s@example.ca",
    )  # fmt: skip
    sponsor = Registration("sponsor", family_name, uci="1", date_of_birth=date(2000, 1, 1))
    plain = bool(accounts.normalize_name(family_name)) and accounts.normalize_name(
        family_name
    ) == accounts.normalize_name(full_name)
    assert (delivery(sponsor, party) is not None) == plain


def test_the_email_and_family_name_on_file_are_read_from_the_case() -> None:
    case = apply(
        None,
        cmd(
            t.RECEIVED,
            principal_applicant=person(family_name="Côté", email="pa@example.com"),
            sponsor=person(uci="1234567890", family_name="Dela Cruz"),
            representative={
                "name": "Marc-André Pelletier",
                "email": "rep@firm.example.ca",
                "membership_id": None,
            },
        ),
    )
    assert accounts.email_on_file(case, "principal_applicant") == "pa@example.com"
    assert accounts.email_on_file(case, "sponsor") is None
    assert accounts.email_on_file(case, "representative") == "rep@firm.example.ca"
    assert accounts.family_name_on_file(case, "sponsor") == "Dela Cruz"
    assert accounts.family_name_on_file(case, "representative") == "Pelletier"
    assert accounts.email_on_file(None, "sponsor") is None
    assert accounts.family_name_on_file(None, "sponsor") == ""
    assert accounts.email_on_file(case, "application_number") is None


def test_nothing_is_on_file_for_an_erased_person() -> None:
    case = apply(
        None,
        cmd(
            t.RECEIVED,
            principal_applicant=person(email="pa@example.com"),
            representative={"name": "Ann Roy", "email": "rep@example.ca", "membership_id": None},
        ),
    )
    envelope = {
        "event_id": uuid.uuid4(),
        "event_type": "personal_data.erased",
        "source": "casetrack privacy",
        "occurred_at": datetime.now(UTC),
    }
    case.erase_personal_data(["principal_applicant", "representative"], "request", "t", envelope)
    for role in ("principal_applicant", "representative"):
        assert accounts.email_on_file(case, role) is None
        assert accounts.family_name_on_file(case, role) == ""
    assert accounts.family_name_on_file(case, "sponsor") == "Lambert"


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

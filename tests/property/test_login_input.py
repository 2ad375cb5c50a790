"""Logins and family names from outside: a control character anywhere (NUL above all,
which PostgreSQL text cannot hold) is a validation error, never a query."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.http.models import Credentials, RepresentativeRegistration

controls = st.characters(min_codepoint=0, max_codepoint=0x1F) | st.just("\x7f")
text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)


@given(text, controls, text)
def test_a_control_character_in_an_email_login_is_refused(
    before: str, control: str, after: str
) -> None:
    login = f"{before}{control}{after}@example.com"
    with pytest.raises(ValidationError) as caught:
        Credentials(login=login, password="x" * 12)
    assert caught.value.errors()[0]["loc"] == ("login",)


@given(text, controls, text)
def test_a_control_character_in_a_family_name_is_refused(
    before: str, control: str, after: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        RepresentativeRegistration(
            role="representative",
            application_number="F123456789",
            family_name=f"{before}{control}{after}",
            email="rep@example.com",
        )
    assert caught.value.errors()[0]["loc"] == ("family_name",)

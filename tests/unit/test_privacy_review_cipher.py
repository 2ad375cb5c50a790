"""Security review of the field cipher (issue 12): a token's subject id is not checked
against the value's place (its case and owner), so an altered token can read as [erased]
instead of failing. (Putting the subject id in the associated data is not enough: with the
key destroyed nothing can be verified; the codec must check privacy_subjects' case and
role for the subject it is asked to open.)"""

from __future__ import annotations

import os
from uuid import uuid4

import pytest

from adapters.privacy.field_cipher import FieldDecryptError, associated_data, seal
from adapters.privacy.personal_codec import PersonalDataCodec

LETTER = "domain.case:Case.CorrespondenceSent"


def test_a_token_altered_to_name_an_erased_subject_is_an_error_not_erased() -> None:
    live, erased, key = uuid4(), uuid4(), os.urandom(32)
    case, version, elsewhere = uuid4(), 3, uuid4()
    keys = {live: (case, "principal_applicant", key), erased: (elsewhere, "sponsor", None)}
    codec = PersonalDataCodec(lambda wanted: {s: keys[s] for s in wanted if s in keys})
    token = seal(key, live, "Zoë's medical results", associated_data(case, version, ".subject"))
    altered = token.replace(live.hex, erased.hex)
    state = {"subject": altered}
    with pytest.raises(FieldDecryptError):
        codec.open(state, LETTER, case, version)

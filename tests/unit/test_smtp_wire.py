"""The notifier's emails in wire form (adapters.smtp builds them directly, without
EmailMessage, for speed): any mail parser reads back what EmailMessage would have sent,
and a header that could inject another still raises."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.smtp import SmtpMailer, SmtpSettings, _Raw

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=400)
SUBJECT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=120
).filter(lambda s: s.strip() == s and "  " not in s)
ADDRESS = st.from_regex(r"\A[a-z0-9_+-]{1,10}(\.[a-z0-9_+-]{1,10}){0,2}@[a-z0-9-]{1,20}\.example\Z")
FROM = st.sampled_from(
    [
        "casetrack <no-reply@casetrack.invalid>",
        "Suivi des dossiers é IRCC <n@x.example>",
        "n@x.example",
    ]
)


def _read(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n").rstrip("\n")


@settings(max_examples=200, deadline=None)
@given(mail_from=FROM, to=ADDRESS, subject=SUBJECT, body=TEXT)
def test_wire_form_reads_back_as_email_message_would(
    mail_from: str, to: str, subject: str, body: str
) -> None:
    mailer = SmtpMailer(SmtpSettings(mail_from=mail_from))
    raw = mailer._message(to, subject, body, "<abc.notify@casetrack.invalid>")
    assert isinstance(raw, _Raw) and raw.to == to
    expected = EmailMessage()
    expected["From"], expected["To"], expected["Subject"] = mail_from, to, subject
    expected["Message-ID"] = "<abc.notify@casetrack.invalid>"
    expected.set_content(body)
    got, want = _read(raw.data), _read(expected.as_bytes(policy=policy.SMTP))
    for header in ("From", "To", "Subject", "Message-ID"):
        assert got[header] == want[header]
    assert _body(got) == _body(want) == body.rstrip("\n").replace("\r\n", "\n")
    assert max(len(line) for line in raw.data.split(b"\r\n")) <= 998
    assert b"\n" not in raw.data.replace(b"\r\n", b"")


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("a@b.example\r\nBcc: c@d.example", "Update"),
        ("a@b.example", "Update\r\nBcc: c@d.example"),
        ("a@b.example", "Update\nBcc: c@d.example"),
    ],
)
def test_a_line_break_in_a_header_is_refused(to: str, subject: str) -> None:
    with pytest.raises(ValueError):
        SmtpMailer(SmtpSettings())._message(to, subject, "body", None)


@pytest.mark.parametrize("to", ["élise@b.example", "a@b@c.example", "A <a@b.example>", "a b@c.d"])
def test_anything_but_a_plain_address_goes_the_email_message_way(to: str) -> None:
    message = SmtpMailer(SmtpSettings())._message(to, "Update", "body", None)
    assert isinstance(message, EmailMessage)

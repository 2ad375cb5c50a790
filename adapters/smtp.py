"""Outgoing mail over SMTP: plain, STARTTLS or implicit TLS, with optional credentials.

Settings come from CASETRACK_SMTP_* and CASETRACK_MAIL_FROM (adapters.settings).
Errors name the server and the step, never the recipient: addresses are personal data.
"""

from __future__ import annotations

import binascii
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from functools import lru_cache
from typing import Literal, Protocol

TlsMode = Literal["none", "starttls", "ssl"]
TLS_MODES: tuple[TlsMode, ...] = ("none", "starttls", "ssl")
DEFAULT_PORTS: dict[TlsMode, int] = {"none": 1025, "starttls": 587, "ssl": 465}


class SmtpConfigError(ValueError):
    """A CASETRACK_SMTP_* setting is malformed."""


class MailNotSent(RuntimeError):
    """The SMTP server could not be reached or refused the message."""


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 1025
    user: str | None = None
    password: str | None = None
    tls: TlsMode = "none"
    mail_from: str = "casetrack <no-reply@casetrack.invalid>"
    ca_file: str | None = None  # a private CA for the server's certificate
    timeout: float = 10.0


class SmtpMailer:
    """Sends one message per connection: codes are rare, and a fresh connection
    never trips over a server that dropped an idle one."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file)

    def send(self, to: str, subject: str, body: str, message_id: str | None = None) -> None:
        """``message_id``: a stable Message-ID (a notification sent again after a crash
        repeats it, so mail clients and receivers can deduplicate); a fresh one when None."""
        message = self._message(to, subject, body, message_id)
        step = "connect"
        try:
            client, step = self._connect()
            with client:
                step = "send"
                _send(client, message)
        except (OSError, smtplib.SMTPException) as e:
            raise self._failed(step, e) from None

    def _message(
        self, to: str, subject: str, body: str, message_id: str | None
    ) -> EmailMessage | _Raw:
        message_id = message_id or make_msgid(domain="casetrack.invalid")
        raw = _raw_message(self.settings.mail_from, to, subject, body, message_id)
        if raw is not None:
            return raw
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = message_id
        message.set_content(body)
        return message

    def _connect(self) -> tuple[smtplib.SMTP, str]:
        """A connected (and logged in) client; OSError or SMTPException, with the step
        reached, from the caller's point of view, in ``_failed``."""
        s = self.settings
        client: smtplib.SMTP
        if s.tls == "ssl":
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context())
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        step = "connect"
        try:
            if s.tls == "starttls":
                step = "starttls"
                client.starttls(context=self._context())
            if s.user:
                step = "login"
                client.login(s.user, s.password or "")
        except (OSError, smtplib.SMTPException) as e:
            client.close()
            raise _AtStep(step, e) from None
        return client, "send"

    def _failed(self, step: str, error: BaseException) -> MailNotSent:
        if isinstance(error, _AtStep):
            step, error = error.step, error.error
        s = self.settings
        return MailNotSent(f"SMTP {s.host}:{s.port} failed at {step}: {type(error).__name__}")


class _AtStep(OSError):
    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(step)
        self.step, self.error = step, error


class SmtpSession(SmtpMailer):
    """Keeps one connection for many messages (`casetrack notify` sends a stream of
    them): a new connection after an error, or once it has been idle for
    ``idle_seconds`` (servers drop idle clients). Not for several threads at once."""

    def __init__(self, settings: SmtpSettings, idle_seconds: float = 20.0) -> None:
        super().__init__(settings)
        self.idle_seconds = idle_seconds
        self._client: smtplib.SMTP | None = None
        self._used = 0.0

    def send(self, to: str, subject: str, body: str, message_id: str | None = None) -> None:
        message = self._message(to, subject, body, message_id)
        step = "connect"
        try:
            if self._client is None or time.monotonic() - self._used > self.idle_seconds:
                self.close()
                self._client, step = self._connect()
            step = "send"
            _send(self._client, message)
            self._used = time.monotonic()
        except (OSError, smtplib.SMTPException) as e:
            self.close()
            raise self._failed(step, e) from None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()


@dataclass(frozen=True)
class _Raw:
    """A message already in wire form, with its envelope."""

    sender: str
    to: str
    data: bytes


def _send(client: smtplib.SMTP, message: EmailMessage | _Raw) -> None:
    if isinstance(message, _Raw):
        client.sendmail(message.sender, [message.to], message.data)
    else:
        client.send_message(message)


_PLAIN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space, no CR or LF
# An address whose header and envelope forms are itself (a dot-atom at a domain name).
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                      r"@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")  # fmt: skip


def _raw_message(mail_from: str, to: str, subject: str, body: str, message_id: str) -> _Raw | None:
    """The message in wire form, built directly: `casetrack notify` sends one per change,
    and ``EmailMessage`` (its header parsing, ``set_content``, then ``send_message``
    flattening it again) cost about 7 ms of CPU each, most of the notifier's time, on
    the cores the projector needs. None for anything but the plain case (an address
    that is not a plain ``local@domain``, a line break in a header): ``EmailMessage``
    handles those (SMTPUTF8, refusing the header, parsing the address) as before."""
    sender = _address(mail_from)
    if (
        sender is None
        or not _ADDRESS.fullmatch(to)
        or not _PLAIN.fullmatch(message_id)
        or "\r" in subject
        or "\n" in subject
    ):
        return None
    headers = (
        f"From: {_from_header(mail_from)}\r\n"
        f"To: {to}\r\n"
        f"Subject: {_subject(subject)}\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    text = body if body.endswith("\n") else body + "\n"
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode(), istext=True)
    return _Raw(sender, to, headers.encode("ascii") + encoded.replace(b"\n", b"\r\n"))


@lru_cache(maxsize=64)
def _address(mail_from: str) -> str | None:
    address = parseaddr(mail_from)[1]
    return address if _ADDRESS.fullmatch(address) else None


@lru_cache(maxsize=64)
def _from_header(mail_from: str) -> str:
    """CASETRACK_MAIL_FROM as a header (its display name encoded if need be)."""
    message = EmailMessage()
    message["From"] = mail_from
    return message["From"].fold(policy=message.policy.clone(linesep="\r\n"))[6:-2]


@lru_cache(maxsize=256)
def _subject(subject: str) -> str:
    """Subjects are a few fixed sentences: each encoded once (RFC 2047 when not ASCII)."""
    if subject.isascii() and len(subject) < 900:
        return subject
    return Header(subject, "utf-8").encode(linesep="\r\n")

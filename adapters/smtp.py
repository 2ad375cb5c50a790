"""Outgoing mail over SMTP: plain, STARTTLS or implicit TLS, with optional credentials.

Settings come from CASETRACK_SMTP_* and CASETRACK_MAIL_FROM (adapters.settings).
Errors name the server and the step, never the recipient: addresses are personal data.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
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
        s = self.settings
        message = EmailMessage()
        message["From"] = s.mail_from
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = message_id or make_msgid(domain="casetrack.invalid")
        message.set_content(body)
        step = "connect"
        try:
            client: smtplib.SMTP
            if s.tls == "ssl":
                client = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=self._context()
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                if s.tls == "starttls":
                    step = "starttls"
                    client.starttls(context=self._context())
                if s.user:
                    step = "login"
                    client.login(s.user, s.password or "")
                step = "send"
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as e:
            raise MailNotSent(
                f"SMTP {s.host}:{s.port} failed at {step}: {type(e).__name__}"
            ) from None

"""Outgoing mail over SMTP: plain, STARTTLS or implicit TLS, with optional credentials.

Settings come from CASETRACK_SMTP_* and CASETRACK_MAIL_FROM (adapters.settings).
Errors name the server and the step, never the recipient: addresses are personal data.
"""

from __future__ import annotations

import smtplib
import ssl
import time
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
        message = self._message(to, subject, body, message_id)
        step = "connect"
        try:
            client, step = self._connect()
            with client:
                step = "send"
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as e:
            raise self._failed(step, e) from None

    def _message(self, to: str, subject: str, body: str, message_id: str | None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = message_id or make_msgid(domain="casetrack.invalid")
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
            self._client.send_message(message)
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

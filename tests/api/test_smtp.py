"""adapters.smtp against a real aiosmtpd server on loopback: plain, STARTTLS with
credentials, implicit TLS, and failures that name the step but not the recipient."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from adapters.settings import Settings
from adapters.smtp import MailNotSent, SmtpConfigError, SmtpMailer, SmtpSettings
from adapters.smtp_sink import MailFolder
from adapters.smtp_sink import start as start_sink
from tests.api.conftest import free_port

RECIPIENT = "someone.private@example.com"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"mailer",
        b"s3cret-pass",
    )
    return AuthResult(success=ok)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[MailFolder, int, dict[str, Any]]]:
    started: list[Any] = []
    port = free_port()

    def run(**options: Any) -> tuple[MailFolder, int]:
        controller = start_sink(tmp_path / "mail", "127.0.0.1", port, **options)
        started.append(controller)
        return controller.handler, port

    yield run  # type: ignore[misc]
    for controller in started:
        controller.stop()


def test_plain_delivery_with_headers(sink: Any) -> None:
    folder, port = sink()
    SmtpMailer(SmtpSettings(port=port, mail_from="Tracker <t@example.org>")).send(
        RECIPIENT, "Votre code", "Bonjour, é à ç"
    )
    (message,) = folder.messages()
    assert message["To"] == RECIPIENT and message["From"] == "Tracker <t@example.org>"
    assert message["Subject"] == "Votre code"
    assert message.get_body(("plain",)).get_content().strip() == "Bonjour, é à ç"


def test_starttls_with_credentials(sink: Any, server_context: ssl.SSLContext, ca_file: str) -> None:
    folder, port = sink(
        tls_context=server_context,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )
    settings = SmtpSettings(
        port=port, tls="starttls", user="mailer", password="s3cret-pass", ca_file=ca_file
    )
    SmtpMailer(settings).send(RECIPIENT, "code", "body")
    assert len(folder.messages()) == 1
    wrong = SmtpSettings(
        port=port, tls="starttls", user="mailer", password="wrong", ca_file=ca_file, timeout=1.0
    )
    with pytest.raises(MailNotSent, match="failed at login") as caught:
        SmtpMailer(wrong).send(RECIPIENT, "code", "body")
    assert RECIPIENT not in str(caught.value)


def test_implicit_tls(sink: Any, server_context: ssl.SSLContext, ca_file: str) -> None:
    folder, port = sink(ssl_context=server_context)
    SmtpMailer(SmtpSettings(port=port, tls="ssl", ca_file=ca_file)).send(RECIPIENT, "s", "b")
    assert len(folder.messages()) == 1


def test_an_untrusted_certificate_is_refused(sink: Any, server_context: ssl.SSLContext) -> None:
    _, port = sink(tls_context=server_context, require_starttls=True)
    with pytest.raises(MailNotSent, match="starttls"):
        SmtpMailer(SmtpSettings(port=port, tls="starttls")).send(RECIPIENT, "s", "b")


def test_unreachable_server_is_a_typed_error() -> None:
    with pytest.raises(MailNotSent, match="failed at connect") as caught:
        SmtpMailer(SmtpSettings(port=free_port(), timeout=2.0)).send(RECIPIENT, "s", "b")
    assert RECIPIENT not in str(caught.value)


def test_settings_from_environment() -> None:
    env = {
        "CASETRACK_SMTP_HOST": "mail.example.org",
        "CASETRACK_SMTP_TLS": "starttls",
        "CASETRACK_SMTP_USER": "u",
        "CASETRACK_SMTP_PASSWORD": "p",
        "CASETRACK_MAIL_FROM": "IRCC <noreply@example.org>",
    }
    found = Settings.from_env(env).smtp
    assert (found.host, found.port, found.tls, found.user) == (
        "mail.example.org",
        587,
        "starttls",
        "u",
    )
    assert found.mail_from == "IRCC <noreply@example.org>"
    env["CASETRACK_SMTP_TLS"] = "tls1.3"
    with pytest.raises(SmtpConfigError, match="none, starttls or ssl"):
        Settings.from_env(env)
    env["CASETRACK_SMTP_TLS"] = "ssl"
    env["CASETRACK_SMTP_PORT"] = "twenty-five"
    with pytest.raises(SmtpConfigError, match="must be a number"):
        Settings.from_env(env)

"""How casetrack's Kafka clients authenticate and encrypt: one settings object for the
consumer, the dead-letter producer, ``consume --status``, the batch reader and the simulator.

Read from ``CASETRACK_KAFKA_*`` variables and the command line's ``--kafka-*`` flags laid
over them (``from_env``, when a command about to use Kafka asks: adapters.settings only
collects the variables); checked by pydantic at that boundary, and
a mistake is refused with a ``KafkaSecurityError`` naming the variable or flag, never
showing a value. The SASL password is read from the environment or from a file (a flag
takes only the file's path, so it never shows in ``ps``); it is a ``SecretStr``, hidden in
reprs, and kafka-python's wire-level debug logs, which would print a PLAIN exchange's
bytes, are kept quiet whenever a password is configured.

kafka-python also speaks OAUTHBEARER, but only through a token-provider object the
application writes (it has no OIDC client of its own); casetrack ships none, so
OAUTHBEARER is refused here rather than half supported (docs/deployment.md).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

# field -> (environment variable, command-line flag): how an error names what is wrong
NAMES: dict[str, tuple[str, str]] = {
    "security_protocol": ("CASETRACK_KAFKA_SECURITY_PROTOCOL", "--kafka-security-protocol"),
    "sasl_mechanism": ("CASETRACK_KAFKA_SASL_MECHANISM", "--kafka-sasl-mechanism"),
    "sasl_username": ("CASETRACK_KAFKA_SASL_USERNAME", "--kafka-sasl-username"),
    "sasl_password": ("CASETRACK_KAFKA_SASL_PASSWORD(_FILE)", "--kafka-sasl-password-file"),
    "ssl_cafile": ("CASETRACK_KAFKA_SSL_CAFILE", "--kafka-ssl-cafile"),
    "ssl_certfile": ("CASETRACK_KAFKA_SSL_CERTFILE", "--kafka-ssl-certfile"),
    "ssl_keyfile": ("CASETRACK_KAFKA_SSL_KEYFILE", "--kafka-ssl-keyfile"),
    "ssl_check_hostname": ("CASETRACK_KAFKA_SSL_CHECK_HOSTNAME", "--kafka-ssl-no-check-hostname"),
}

# kafka-python logs every request and its bytes at DEBUG, a PLAIN exchange's password too
WIRE_LOGGERS = ("kafka.protocol.parser", "kafka.net.connection")


class KafkaSecurityError(ValueError):
    """A Kafka security setting is missing, malformed or inconsistent; the message names
    the setting and never shows its value."""


class KafkaTlsRefused(ConnectionError):
    """The broker's TLS handshake failed for good (its certificate is not trusted, its
    name does not match, or it refused ours): retrying would not help."""


class KafkaSecurity(BaseModel):
    """The security part of every Kafka client's configuration."""

    # Built directly (not through from_env), pydantic's errors still show no input.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    security_protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: Mechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: FilePath | None = None
    ssl_certfile: FilePath | None = None
    ssl_keyfile: FilePath | None = None
    ssl_check_hostname: bool = True

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        if self.sasl:
            for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
                if not getattr(self, name):
                    raise _Missing(name, f"is required with {self.security_protocol}")
        else:
            for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
                if getattr(self, name):
                    raise _Missing(name, "is set but the security protocol has no SASL")
        if not self.tls:
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                if getattr(self, name):
                    raise _Missing(name, "is set but the security protocol has no TLS")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise _Missing("ssl_certfile", "is required with a key file")
        if self.tls:
            self.ssl_context()  # a CA file that holds no certificate, a key not the cert's
        return self

    # ------------------------------------------------------------ building

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, sasl_password_file: str | None = None, **flags: Any
    ) -> KafkaSecurity:
        """The settings the ``CASETRACK_KAFKA_*`` variables in ``env`` give (PLAINTEXT when
        none is set), with the command line's flags (None: not given) laid over them and
        the whole checked once; KafkaSecurityError names what is wrong."""

        def get(name: str) -> str | None:
            return env.get(name, "").strip() or None

        password = env.get("CASETRACK_KAFKA_SASL_PASSWORD") or None
        password_file = get("CASETRACK_KAFKA_SASL_PASSWORD_FILE")
        if sasl_password_file is not None:  # the flag wins over both variables
            password = read_secret(sasl_password_file, "--kafka-sasl-password-file")
        elif password and password_file:
            raise KafkaSecurityError(
                "set CASETRACK_KAFKA_SASL_PASSWORD or CASETRACK_KAFKA_SASL_PASSWORD_FILE, not both"
            )
        elif password_file:
            password = read_secret(password_file, "CASETRACK_KAFKA_SASL_PASSWORD_FILE")
        check = get("CASETRACK_KAFKA_SSL_CHECK_HOSTNAME") or "true"
        if check.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise KafkaSecurityError("CASETRACK_KAFKA_SSL_CHECK_HOSTNAME must be true or false")
        values: dict[str, Any] = {
            "security_protocol": get("CASETRACK_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
            "sasl_mechanism": get("CASETRACK_KAFKA_SASL_MECHANISM"),
            "sasl_username": get("CASETRACK_KAFKA_SASL_USERNAME"),
            "sasl_password": password,
            "ssl_cafile": get("CASETRACK_KAFKA_SSL_CAFILE"),
            "ssl_certfile": get("CASETRACK_KAFKA_SSL_CERTFILE"),
            "ssl_keyfile": get("CASETRACK_KAFKA_SSL_KEYFILE"),
            "ssl_check_hostname": check.lower() in ("true", "1", "yes"),
        }
        given = {name: value for name, value in flags.items() if value is not None}
        values.update(given)
        return _validated(values, by_flag=bool(given) or sasl_password_file is not None)

    # ------------------------------------------------------------ using

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context every client uses (as kafka-python would build it from the same
        files): TLS 1.2 at least, the CA file or the system's, the hostname checked unless
        turned off, the client certificate when given."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = self.ssl_check_hostname
        if self.ssl_cafile:
            try:
                ctx.load_verify_locations(cafile=str(self.ssl_cafile))
            except (ssl.SSLError, OSError):
                raise _Missing("ssl_cafile", "holds no readable PEM certificate") from None
        else:
            ctx.load_default_certs()
        if self.ssl_certfile:
            try:
                ctx.load_cert_chain(
                    str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
                )
            except (ssl.SSLError, OSError):
                raise _Missing(
                    "ssl_certfile", "and its key file do not hold a matching certificate and key"
                ) from None
        return ctx

    def client_config(self) -> dict[str, Any]:
        """kafka-python's settings for this security (merged into each client's)."""
        config: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.tls:
            config["ssl_context"] = self.ssl_context()
        if self.sasl:
            assert self.sasl_password is not None
            config |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password.get_secret_value(),
            }
            quiet_wire_logs()
        return config

    def check_tls(self, bootstrap_servers: str, timeout: float = 5.0) -> None:
        """Fail fast on a TLS handshake that cannot succeed (KafkaTlsRefused, naming the
        server and the reason): kafka-python would retry it for ever. A server that does
        not answer is no error here: the clients wait for it as for any outage."""
        if not self.tls:
            return
        ctx = self.ssl_context()
        for server in filter(None, (s.strip() for s in bootstrap_servers.split(","))):
            host, port = _host_port(server)
            try:
                sock = socket.create_connection((host, port), timeout=timeout)
            except OSError:
                continue
            try:
                with ctx.wrap_socket(sock, server_hostname=host):
                    pass
            except ssl.SSLCertVerificationError as e:
                raise KafkaTlsRefused(
                    f"TLS handshake with {server} refused: certificate verify failed:"
                    f" {e.verify_message}"
                    " (check CASETRACK_KAFKA_SSL_CAFILE and the broker's certificate name)"
                ) from None
            except ssl.SSLError as e:
                raise KafkaTlsRefused(
                    f"TLS handshake with {server} failed: {e.reason or e}"
                ) from None
            except OSError:
                continue  # reset or timed out mid-handshake: an outage, not a refusal
            finally:
                sock.close()


class _Missing(KafkaSecurityError):
    """Which field, and what is wrong with it: inside validation (``_validated`` names the
    flag too), or from ``ssl_context`` later (a file gone since)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{NAMES[field][0]} {problem}")
        self.field, self.problem = field, problem


def _host_port(server: str) -> tuple[str, int]:
    """``host:port``, ``[v6 address]:port``, or a host alone (Kafka's port 9092)."""
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest[1:]) if rest[:1] == ":" and rest[1:].isdigit() else 9092
    host, colon, port = server.rpartition(":")
    if colon and port.isdigit() and ":" not in host:
        return host, int(port)
    return server, 9092


def _validated(values: Mapping[str, Any], by_flag: bool) -> KafkaSecurity:
    try:
        return KafkaSecurity.model_validate(values)
    except ValidationError as e:
        # pydantic's own text shows the input: rebuilt from the field and message only.
        problems = []
        for error in e.errors(include_input=False, include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, _Missing):
                field, message = cause.field, cause.problem
            else:
                message = _plain(error["type"], error["msg"])
            problems.append(f"{_name(field, by_flag)} {message}")
        raise KafkaSecurityError("; ".join(problems)) from None


def _plain(kind: str, message: str) -> str:
    if kind == "path_not_file":
        return "names no file"
    if kind == "literal_error":
        return message.replace("Input should be", "must be")
    return message[0].lower() + message[1:] if message else kind


def _name(field: str, by_flag: bool) -> str:
    env, flag = NAMES.get(field, (field, field))
    return f"{flag} (or {env})" if by_flag else env


def read_secret(path: str, name: str) -> str:
    """A secret from a file (its trailing newline dropped); the error names ``name``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise KafkaSecurityError(f"{name} names no readable file") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise KafkaSecurityError(f"{name} names an empty file")
    return secret


def quiet_wire_logs() -> None:
    """kafka-python's request and response dumps off (INFO and above only)."""
    for name in WIRE_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.INFO))

"""consumers.kafka.security: the Kafka clients' TLS and SASL settings, from the environment
and the command line, refused by name when wrong, the password never shown."""

from __future__ import annotations

import argparse
import logging
import ssl
from pathlib import Path

import pytest
import trustme

from adapters.settings import Settings
from consumers.kafka import security_flags
from consumers.kafka.security import KafkaSecurity, KafkaSecurityError
from consumers.kafka.settings import ConsumerSettings

PASSWORD = "pw-Zq8#never-shown"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pems(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    client = ca.issue_cert("casetrack-consumer")
    files = {
        "ca": tmp_path / "ca.pem",
        "cert": tmp_path / "client.pem",
        "key": tmp_path / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    return files


def sasl_ssl_env(pems: dict[str, Path], **more: str) -> dict[str, str]:
    return {
        "CASETRACK_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "CASETRACK_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "CASETRACK_KAFKA_SASL_USERNAME": "casetrack",
        "CASETRACK_KAFKA_SASL_PASSWORD": PASSWORD,
        "CASETRACK_KAFKA_SSL_CAFILE": str(pems["ca"]),
        "CASETRACK_KAFKA_SSL_CERTFILE": str(pems["cert"]),
        "CASETRACK_KAFKA_SSL_KEYFILE": str(pems["key"]),
        **more,
    }


def refused(env: dict[str, str]) -> str:
    with pytest.raises(KafkaSecurityError) as e:
        KafkaSecurity.from_env(env)
    assert PASSWORD not in str(e.value)
    return str(e.value)


def test_plaintext_when_nothing_is_set() -> None:
    assert Settings.from_env({}).kafka_env == {}
    security = KafkaSecurity.from_env({})
    assert security.client_config() == {"security_protocol": "PLAINTEXT"}
    assert ConsumerSettings("b:9092").consumer_config()["security_protocol"] == "PLAINTEXT"


def test_every_variable_reaches_every_client(pems: dict[str, Path]) -> None:
    security = KafkaSecurity.from_env(Settings.from_env(sasl_ssl_env(pems)).kafka_env)
    assert security.security_protocol == "SASL_SSL" and security.sasl_mechanism == "SCRAM-SHA-512"
    settings = ConsumerSettings("broker:9093", security=security)
    for config in (
        settings.consumer_config(),
        settings.producer_config(),
        settings.status_config(5.0),
    ):
        assert config["security_protocol"] == "SASL_SSL"
        assert config["sasl_mechanism"] == "SCRAM-SHA-512"
        assert config["sasl_plain_username"] == "casetrack"
        assert config["sasl_plain_password"] == PASSWORD
        context = config["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert context.cert_store_stats()["x509_ca"] == 1  # our CA, not the system's


def test_the_password_from_a_file(pems: dict[str, Path], tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n")
    env = sasl_ssl_env(pems, CASETRACK_KAFKA_SASL_PASSWORD_FILE=str(secret))
    del env["CASETRACK_KAFKA_SASL_PASSWORD"]
    security = KafkaSecurity.from_env(env)
    assert security.sasl_password is not None
    assert security.sasl_password.get_secret_value() == PASSWORD  # the newline dropped
    both = sasl_ssl_env(pems, CASETRACK_KAFKA_SASL_PASSWORD_FILE=str(secret))
    assert "not both" in refused(both)
    missing = {**env, "CASETRACK_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "none")}
    assert refused(missing) == "CASETRACK_KAFKA_SASL_PASSWORD_FILE names no readable file"


def test_the_password_is_never_shown(pems: dict[str, Path]) -> None:
    settings = Settings.from_env(sasl_ssl_env(pems))
    security = KafkaSecurity.from_env(settings.kafka_env)
    consumer = ConsumerSettings("broker:9093", security=security)
    for text in (repr(settings), str(settings), repr(consumer), str(security)):
        assert PASSWORD not in text
    assert "**********" in repr(security)
    assert PASSWORD not in security.model_dump_json()
    # an error about another field, and one where the password itself is malformed
    assert PASSWORD not in refused(sasl_ssl_env(pems, CASETRACK_KAFKA_SASL_MECHANISM="GSSAPI"))
    with pytest.raises(ValueError) as e:  # built directly, pydantic's own error
        KafkaSecurity.model_validate({"sasl_password": ["x", PASSWORD]})  # not a string
    assert PASSWORD not in str(e.value) and PASSWORD not in repr(e.value)
    with pytest.raises(KafkaSecurityError) as e:
        KafkaSecurity.from_env({}, sasl_password=["x", PASSWORD])
    assert PASSWORD not in str(e.value) and PASSWORD not in repr(e.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"CASETRACK_KAFKA_SASL_MECHANISM": ""},
            "CASETRACK_KAFKA_SASL_MECHANISM is required with SASL_SSL",
        ),
        (
            {"CASETRACK_KAFKA_SASL_USERNAME": ""},
            "CASETRACK_KAFKA_SASL_USERNAME is required with SASL_SSL",
        ),
        (
            {"CASETRACK_KAFKA_SASL_PASSWORD": ""},
            "CASETRACK_KAFKA_SASL_PASSWORD(_FILE) is required with SASL_SSL",
        ),
        (
            {"CASETRACK_KAFKA_SSL_CAFILE": "/nowhere/ca.pem"},
            "CASETRACK_KAFKA_SSL_CAFILE names no file",
        ),
        (
            {"CASETRACK_KAFKA_SECURITY_PROTOCOL": "TLS"},
            "CASETRACK_KAFKA_SECURITY_PROTOCOL must be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT'"
            " or 'SASL_SSL'",
        ),
        (
            {"CASETRACK_KAFKA_SASL_MECHANISM": "OAUTHBEARER"},
            "CASETRACK_KAFKA_SASL_MECHANISM must be 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'",
        ),
        (
            {"CASETRACK_KAFKA_SECURITY_PROTOCOL": "SSL"},
            "CASETRACK_KAFKA_SASL_MECHANISM is set but the security protocol has no SASL",
        ),
        (
            {"CASETRACK_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "CASETRACK_KAFKA_SSL_CAFILE is set but the security protocol has no TLS",
        ),
        (
            {"CASETRACK_KAFKA_SSL_CERTFILE": ""},
            "CASETRACK_KAFKA_SSL_CERTFILE is required with a key file",
        ),
        (
            {"CASETRACK_KAFKA_SSL_CHECK_HOSTNAME": "maybe"},
            "CASETRACK_KAFKA_SSL_CHECK_HOSTNAME must be true or false",
        ),
    ],
)
def test_a_wrong_setting_is_refused_by_name(
    pems: dict[str, Path], change: dict[str, str], message: str
) -> None:
    assert refused(sasl_ssl_env(pems, **change)) == message


def test_files_that_hold_no_certificate_or_no_matching_key(
    pems: dict[str, Path], ca: trustme.CA, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert (
        refused(sasl_ssl_env(pems, CASETRACK_KAFKA_SSL_CAFILE=str(junk)))
        == "CASETRACK_KAFKA_SSL_CAFILE holds no readable PEM certificate"
    )
    other_key = tmp_path / "other.key"
    ca.issue_cert("someone-else").private_key_pem.write_to_path(str(other_key))
    assert refused(sasl_ssl_env(pems, CASETRACK_KAFKA_SSL_KEYFILE=str(other_key))) == (
        "CASETRACK_KAFKA_SSL_CERTFILE and its key file do not hold a matching certificate and key"
    )


def test_only_the_commands_that_use_kafka_check_its_settings() -> None:
    """An API process is not stopped by Kafka variables it never uses; the settings keep
    them (out of the repr) for the commands that do."""
    env = {"CASETRACK_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "OTHER": "x"}
    settings = Settings.from_env(env)
    assert settings.kafka_env == {"CASETRACK_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
    with pytest.raises(KafkaSecurityError, match="CASETRACK_KAFKA_SASL_MECHANISM is required"):
        security_flags.from_flags(parse([]), settings.kafka_env)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    security_flags.add_flags(parser)
    return parser.parse_args(argv)


def test_flags_override_the_environment(pems: dict[str, Path], tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-the-file")
    env = sasl_ssl_env(pems)
    args = parse(
        [
            "--kafka-sasl-mechanism",
            "PLAIN",
            "--kafka-sasl-password-file",
            str(secret),
            "--kafka-ssl-no-check-hostname",
        ]
    )
    security = security_flags.from_flags(args, env)
    assert security.sasl_mechanism == "PLAIN" and security.sasl_username == "casetrack"
    assert security.sasl_password is not None
    assert security.sasl_password.get_secret_value() == "from-the-file"
    assert not security.ssl_check_hostname and not security.ssl_context().check_hostname
    assert security_flags.from_flags(parse([]), env) == KafkaSecurity.from_env(env)
    assert security_flags.from_flags(parse([]), {}) == KafkaSecurity()
    # the flag completes what the environment lacks, checked once for the whole
    without = {k: v for k, v in env.items() if k != "CASETRACK_KAFKA_SASL_PASSWORD"}
    completed = security_flags.from_flags(
        parse(["--kafka-sasl-password-file", str(secret)]), without
    )
    assert completed.sasl_password is not None
    with pytest.raises(KafkaSecurityError) as e:
        security_flags.from_flags(parse(["--kafka-security-protocol", "SASL_SSL"]), {})
    assert str(e.value).startswith(
        "--kafka-sasl-mechanism (or CASETRACK_KAFKA_SASL_MECHANISM) is required with SASL_SSL"
    )


def test_a_password_given_as_the_file_flag_is_not_echoed() -> None:
    """There is no flag for the password itself; one typed where its file belongs (argparse
    takes ``--kafka-sasl-password`` for ``--kafka-sasl-password-file``) is not repeated."""
    args = parse(["--kafka-sasl-password", PASSWORD])
    with pytest.raises(KafkaSecurityError) as e:
        security_flags.from_flags(args, {})
    assert str(e.value) == "--kafka-sasl-password-file names no readable file"


def test_wire_logs_stay_quiet_with_a_password(pems: dict[str, Path]) -> None:
    logging.getLogger("kafka.protocol.parser").setLevel(logging.DEBUG)
    KafkaSecurity.from_env(sasl_ssl_env(pems)).client_config()
    for name in ("kafka.protocol.parser", "kafka.net.connection"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)


def test_bootstrap_addresses_as_kafka_writes_them() -> None:
    from consumers.kafka.security import _host_port

    assert _host_port("broker.example:9093") == ("broker.example", 9093)
    assert _host_port("broker.example") == ("broker.example", 9092)
    assert _host_port("[::1]:9094") == ("::1", 9094)
    assert _host_port("[::1]") == ("::1", 9092)


def test_a_file_gone_after_the_check_is_named(pems: dict[str, Path]) -> None:
    security = KafkaSecurity.from_env(sasl_ssl_env(pems))
    pems["ca"].write_text("rotated badly")
    with pytest.raises(KafkaSecurityError) as e:
        security.client_config()
    assert str(e.value) == "CASETRACK_KAFKA_SSL_CAFILE holds no readable PEM certificate"

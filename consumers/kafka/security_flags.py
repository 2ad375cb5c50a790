"""The command line's ``--kafka-*`` flags (``casetrack consume``, the simulator): kept apart
from consumers.kafka.security so that building the parser imports no pydantic."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consumers.kafka.security import KafkaSecurity


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The ``--kafka-*`` flags, each overriding its CASETRACK_KAFKA_* variable. The
    password is taken only from a file: a flag's value shows in ``ps``."""
    group = parser.add_argument_group("Kafka security (default: the CASETRACK_KAFKA_* variables)")
    group.add_argument(
        "--kafka-security-protocol", choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
    )
    group.add_argument(
        "--kafka-sasl-mechanism", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    )
    group.add_argument("--kafka-sasl-username", metavar="NAME")
    group.add_argument(
        "--kafka-sasl-password-file", metavar="PATH", help="file holding the password"
    )
    group.add_argument("--kafka-ssl-cafile", metavar="PATH", help="CA certificates (PEM)")
    group.add_argument("--kafka-ssl-certfile", metavar="PATH", help="client certificate (PEM)")
    group.add_argument("--kafka-ssl-keyfile", metavar="PATH", help="client key (PEM)")
    group.add_argument(
        "--kafka-ssl-no-check-hostname",
        action="store_const",
        const=False,
        dest="kafka_ssl_check_hostname",
        help="do not check the broker's name against its certificate",
    )


def from_flags(args: argparse.Namespace, env: Mapping[str, str]) -> KafkaSecurity:
    """The ``CASETRACK_KAFKA_*`` variables of ``env`` with ``add_flags``' flags over them;
    KafkaSecurityError when the result is wrong."""
    from consumers.kafka.security import KafkaSecurity

    return KafkaSecurity.from_env(
        env,
        security_protocol=args.kafka_security_protocol,
        sasl_mechanism=args.kafka_sasl_mechanism,
        sasl_username=args.kafka_sasl_username,
        sasl_password_file=args.kafka_sasl_password_file,
        ssl_cafile=args.kafka_ssl_cafile,
        ssl_certfile=args.kafka_ssl_certfile,
        ssl_keyfile=args.kafka_ssl_keyfile,
        ssl_check_hostname=args.kafka_ssl_check_hostname,
    )

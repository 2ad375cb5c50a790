"""Kafka over TLS for real: a TLS-terminating proxy (mutual TLS, certificates from trustme)
in front of the embedded broker, which advertises the proxy's address, so that every
connection the clients make is encrypted. The consumer, its dead-letter producer, the
simulator and `consume --status` go through it; a CA that did not sign the broker's
certificate, or a certificate of another name, is refused at once with a clear error."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from adapters import logs
from adapters.kafka_broker import HOST, EmbeddedBroker, free_port
from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from consumers.kafka.security import KafkaSecurity, KafkaTlsRefused
from simulation import kafka_feed
from tests.cli_process import ROOT, run
from tests.integration.kafka_fixtures import (
    consuming,
    new_topic,
    read_topic,
    settings,
    unique,
    wait_until,
)
from tests.integration.kafka_proxy import KafkaProxy, server_context, write_pems
from tests.stores import count

PASSWORD = "pw-7Rk!not-in-any-log"


@dataclass
class TlsBroker:
    bootstrap: str
    proxy: KafkaProxy
    ca: trustme.CA
    files: dict[str, str]

    def env(self, **more: str) -> dict[str, str]:
        return {
            "CASETRACK_KAFKA_SECURITY_PROTOCOL": "SSL",
            "CASETRACK_KAFKA_SSL_CAFILE": self.files["ca"],
            "CASETRACK_KAFKA_SSL_CERTFILE": self.files["cert"],
            "CASETRACK_KAFKA_SSL_KEYFILE": self.files["key"],
            **more,
        }

    def security(self, **more: str) -> KafkaSecurity:
        return KafkaSecurity.from_env(self.env(**more))


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    ca = trustme.CA()
    files = write_pems(ca, tmp_path_factory.mktemp("pki"))
    port = free_port()
    proxy = KafkaProxy((HOST, port), tls=server_context(ca, HOST))
    with proxy, EmbeddedBroker(port, advertised=proxy.address):
        yield TlsBroker(proxy.address, proxy, ca, files)


def test_consumer_and_dead_letter_producer_through_tls(
    tls_broker: TlsBroker, store: CaseStore
) -> None:
    security = tls_broker.security()
    config = security.client_config()
    bootstrap = tls_broker.bootstrap
    topic, group = new_topic(bootstrap, **config), unique("group")
    valid = kafka_feed.feed(40, seed=23, duplicate_share=0.0, poison_share=0.0)
    poison = [f"not json over tls {i}" for i in range(3)]
    kafka_feed.publish([*valid, *poison], bootstrap, topic, security=security)

    consumer_settings = settings(bootstrap, topic, group, security=security)
    with consuming(store, consumer_settings) as running:
        wait_until(lambda: running.stats.accepted == len(valid), 60, "every valid event stored")
        wait_until(
            lambda: count(store, "dead_letters", "published_at IS NOT NULL") == 3,
            30,
            "the dead letters on the dead-letter topic",
        )
    assert running.error is None
    dead = read_topic(bootstrap, consumer_settings.dead_letter_topic, 3, **config)
    assert sorted(r.value for r in dead) == sorted(p.encode() for p in poison)
    assert count(store, EVENTS_TABLE) == len(valid)

    sessions = tls_broker.proxy.sessions
    assert len(sessions) >= 4 and all(s.tls_error is None for s in sessions)
    # Mutual TLS: every connection presented the client certificate.
    assert all(s.client_certificate for s in sessions if s.requests)
    clients = {r.client_id for r in tls_broker.proxy.requests()}
    assert {"casetrack-consumer", "casetrack-dead-letters"} <= clients


def test_consume_status_through_tls(tls_broker: TlsBroker, cli_env: dict[str, str]) -> None:
    config = tls_broker.security().client_config()
    topic = new_topic(tls_broker.bootstrap, 2, **config)
    args = ["consume", "--bootstrap-servers", tls_broker.bootstrap, "--topic", topic, "--status"]
    done = run(args, {**cli_env, **tls_broker.env()}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"topic {topic}, group casetrack" in done.stdout
    # the same from flags alone, the environment without any CASETRACK_KAFKA_* variable
    files = tls_broker.files
    flags = ["--kafka-security-protocol", "SSL", "--kafka-ssl-cafile", files["ca"]]
    flags += ["--kafka-ssl-certfile", files["cert"], "--kafka-ssl-keyfile", files["key"]]
    done = run([*args, *flags], cli_env, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_wrong_ca_is_refused_at_once(
    tls_broker: TlsBroker, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A CA that did not sign the broker's certificate: every command stops within seconds
    with the reason, instead of retrying for ever."""
    stranger = write_pems(trustme.CA(), tmp_path, "stranger-")
    env = {**cli_env, **tls_broker.env(CASETRACK_KAFKA_SSL_CAFILE=stranger["ca"])}
    bootstrap = tls_broker.bootstrap
    for args in (
        ["consume", "--bootstrap-servers", bootstrap],
        ["consume", "--bootstrap-servers", bootstrap, "--status"],
    ):
        started = time.monotonic()
        done = run(args, env, timeout=30)
        elapsed = time.monotonic() - started
        assert done.returncode == 1, done.stderr
        assert f"casetrack: TLS handshake with {bootstrap} refused:" in done.stderr
        assert "certificate verify failed: self-signed certificate in certificate chain" in (
            done.stderr
        )
        assert elapsed < 15, f"refused only after {elapsed:.1f}s"
    started = time.monotonic()
    simulator = [sys.executable, "-m", "simulation.kafka_feed", "--bootstrap-servers", bootstrap]
    fed = subprocess.run(simulator, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert fed.returncode == 2 and "TLS handshake with" in fed.stderr, fed.stderr
    assert time.monotonic() - started < 15


def test_the_broker_name_is_checked(tls_broker: TlsBroker) -> None:
    """The proxy's certificate is for 127.0.0.1; one for another name is refused unless the
    check is turned off (CASETRACK_KAFKA_SSL_CHECK_HOSTNAME=false)."""
    port = free_port()
    impostor = server_context(tls_broker.ca, "broker.example")
    with KafkaProxy((HOST, port), tls=impostor) as proxy:
        with pytest.raises(KafkaTlsRefused, match="IP address mismatch"):
            tls_broker.security().check_tls(proxy.address, timeout=5)
        unchecked = tls_broker.security(CASETRACK_KAFKA_SSL_CHECK_HOSTNAME="false")
        unchecked.check_tls(proxy.address, timeout=5)
    # a broker that does not answer is an outage, not a refusal: the clients wait for it
    tls_broker.security().check_tls(f"{HOST}:{free_port()}", timeout=1)


def test_a_failing_connection_logs_no_secret(
    tls_broker: TlsBroker,
    store: CaseStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SASL over TLS with a CA that does not fit: what kafka-python's loggers say at DEBUG,
    and casetrack's (structlog: error type names only), names the failure, never the
    password."""
    stranger = write_pems(trustme.CA(), tmp_path, "stranger-")
    security = tls_broker.security(
        CASETRACK_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        CASETRACK_KAFKA_SASL_MECHANISM="PLAIN",
        CASETRACK_KAFKA_SASL_USERNAME="casetrack",
        CASETRACK_KAFKA_SASL_PASSWORD=PASSWORD,
        CASETRACK_KAFKA_SSL_CAFILE=stranger["ca"],
    )
    logs.configure("debug")
    caplog.set_level(logging.DEBUG)
    try:
        with consuming(store, settings(tls_broker.bootstrap, unique("t"), "g", security=security)):
            time.sleep(3)
    finally:
        logs.configure("error")
    said = caplog.text + capsys.readouterr().err
    assert "CERTIFICATE_VERIFY_FAILED" in said or "certificate verify failed" in said
    assert PASSWORD not in said


def test_a_wrong_setting_stops_consume_before_anything_connects(
    cli_env: dict[str, str],
) -> None:
    env = {**cli_env, "CASETRACK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    env["CASETRACK_KAFKA_SASL_PASSWORD"] = PASSWORD
    done = run(["consume", "--bootstrap-servers", f"{HOST}:{free_port()}"], env, timeout=30)
    assert done.returncode == 2
    assert done.stderr == "casetrack: CASETRACK_KAFKA_SASL_MECHANISM is required with SASL_SSL\n"

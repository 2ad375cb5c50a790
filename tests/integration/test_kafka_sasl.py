"""SASL as configured, seen on the wire: a capturing proxy in front of the embedded broker
run with ``--authentication``.

The embedded broker (Tansu 0.6) authenticates with SCRAM-SHA-256 and -512 only, and
cannot be given a user here: creating one (AlterUserScramCredentials) needs an
authenticated session once authentication is on, and its memory storage forgets a user
made before a restart. So no login succeeds, and what is shown is everything short of
that: every client (consumer, dead-letter producer, `consume --status`, the batch reader,
the simulator, `casetrack consume` itself) opens with SaslHandshake for the configured
mechanism and SaslAuthenticate for the configured user; a real SCRAM server answers with
its salt and iteration count; and the proof each client then sends is the one RFC 5802
computes from the configured password (checked here independently). The broker's last
word is ``e=unknown-user``. PLAIN it refuses at the handshake, so for PLAIN only the
handshake is shown. Over SASL_SSL the same exchange runs inside TLS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from adapters.kafka_broker import HOST, EmbeddedBroker, free_port
from consumers.kafka.record_batches import find_undecodable
from consumers.kafka.security import KafkaSecurity
from consumers.kafka.settings import ConsumerSettings
from simulation import kafka_feed
from tests.cli_process import running
from tests.integration.kafka_fixtures import wait_until
from tests.integration.kafka_proxy import (
    SASL_AUTHENTICATE,
    SASL_HANDSHAKE,
    KafkaProxy,
    Request,
    server_context,
    write_pems,
)

USER = "casetrack-ingest"
PASSWORD = "pw-Sc4m!only-a-proof-goes-out"
CLIENTS = ("casetrack-consumer", "casetrack-dead-letters", "casetrack-status")


def sasl_broker(tls: Any = None) -> Iterator[KafkaProxy]:
    port = free_port()
    proxy = KafkaProxy((HOST, port), tls=tls)
    with proxy, EmbeddedBroker(port, advertised=proxy.address, authentication=True):
        yield proxy


@pytest.fixture
def proxy() -> Iterator[KafkaProxy]:
    yield from sasl_broker()


def security(mechanism: str, protocol: str = "SASL_PLAINTEXT", **more: Any) -> KafkaSecurity:
    return KafkaSecurity(
        security_protocol=protocol,  # type: ignore[arg-type]
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username=USER,
        sasl_password=PASSWORD,  # type: ignore[arg-type]
        **more,
    )


def try_every_client(bootstrap: str, secured: KafkaSecurity) -> None:
    """Each of casetrack's clients, built as casetrack builds it, tries to connect (and
    fails: no user exists); at once, so that their bounded bootstrap waits overlap. The
    simulator's producer waits kafka-python's default 30 s to bootstrap: it is left to
    fail in the background once its exchange is on the wire."""
    settings = ConsumerSettings(bootstrap, topic="case-events", group="g", security=secured)
    attempts: list[Callable[[], object]] = [
        lambda: KafkaConsumer(**settings.consumer_config()),
        lambda: KafkaProducer(**settings.producer_config()),
        lambda: KafkaConsumer(**settings.status_config(3.0)),
        lambda: find_undecodable(
            bootstrap, {TopicPartition("case-events", 0): 0}, 3000, secured.client_config()
        ),
    ]
    simulator = threading.Thread(
        target=attempt,
        args=(lambda: kafka_feed.publish(["{}"], bootstrap, "case-events", security=secured),),
        daemon=True,
    )
    simulator.start()
    threads = [threading.Thread(target=attempt, args=(a,), daemon=True) for a in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads), "a client kept trying past its bound"


def attempt(make: Callable[[], object]) -> None:
    try:
        client = make()
    except Exception:
        return  # refused, as expected: the wire is what is checked
    close = getattr(client, "close", None)
    if close is not None:
        close()


def simulator_ids(proxy: KafkaProxy) -> tuple[str, ...]:
    """The simulator's producer's client id (kafka-python's default), once it authenticated."""
    ours = {*CLIENTS, "casetrack-batch-reader"}
    wait_until(
        lambda: (
            any(
                r.client_id not in ours and r.api_key == SASL_AUTHENTICATE and r.answer
                for r in proxy.requests()
            )
            and len([r for r in proxy.requests() if r.client_id not in ours]) >= 4
        ),
        20,
        "the simulator's SASL exchange",
    )
    return tuple({r.client_id for r in proxy.requests()} - ours)


def scram_proof(mechanism: str, first: Request, final: Request) -> bytes:
    """The ClientProof RFC 5802 derives from PASSWORD and the exchange as captured."""
    digest = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
    assert first.auth_bytes is not None and first.answer is not None
    assert final.auth_bytes is not None
    client_first_bare = first.auth_bytes.removeprefix(b"n,,")
    server_first = first.answer
    fields = dict(part.split(b"=", 1) for part in server_first.split(b","))
    salted = hashlib.pbkdf2_hmac(
        digest, PASSWORD.encode(), base64.b64decode(fields[b"s"]), int(fields[b"i"])
    )
    client_key = hmac.digest(salted, b"Client Key", digest)
    stored_key = hashlib.new(digest, client_key).digest()
    without_proof = final.auth_bytes[: final.auth_bytes.index(b",p=")]
    message = b",".join((client_first_bare, server_first, without_proof))
    signature = hmac.digest(stored_key, message, digest)
    return base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True)))


def check_scram(proxy: KafkaProxy, mechanism: str, clients: tuple[str, ...]) -> None:
    requests = proxy.requests()
    for client in clients:
        mine = [r for r in requests if r.client_id == client]
        handshakes = [r for r in mine if r.api_key == SASL_HANDSHAKE]
        assert handshakes, f"{client} sent no SaslHandshake"
        assert {r.mechanism for r in handshakes} == {mechanism}
        auth = [r for r in mine if r.api_key == SASL_AUTHENTICATE]
        first, final = auth[0], auth[1]
        assert first.auth_bytes is not None and final.auth_bytes is not None
        # client-first: no channel binding, the configured user, a nonce
        assert first.auth_bytes.startswith(f"n,,n={USER},r=".encode())
        # a real SCRAM server's server-first: our nonce extended, its salt and iterations
        assert first.answer_error == 0 and first.answer is not None
        client_nonce = first.auth_bytes.split(b",r=")[1]
        assert first.answer.startswith(b"r=" + client_nonce) and b",s=" in first.answer
        # client-final: the proof the configured password gives, and nothing else of it
        assert final.auth_bytes.startswith(b"c=biws,r=")
        assert final.auth_bytes.split(b",p=")[1] == scram_proof(mechanism, first, final)
        assert final.answer == b"e=unknown-user"  # no user could be provisioned (module doc)
    for request in requests:
        assert PASSWORD.encode() not in (request.auth_bytes or b"")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_as_configured_from_every_client(proxy: KafkaProxy, mechanism: str) -> None:
    try_every_client(proxy.address, security(mechanism))
    check_scram(proxy, mechanism, (*CLIENTS, "casetrack-batch-reader", *simulator_ids(proxy)))


def test_plain_as_configured(proxy: KafkaProxy) -> None:
    """The broker refuses PLAIN at the handshake (it offers SCRAM only): the mechanism is
    shown as sent; the PLAIN SaslAuthenticate (user and password) is not exercised here."""
    try_every_client(proxy.address, security("PLAIN"))
    handshakes = [r for r in proxy.requests() if r.api_key == SASL_HANDSHAKE]
    assert {r.client_id for r in handshakes} >= set(CLIENTS)
    assert {r.mechanism for r in handshakes} == {"PLAIN"}
    assert not [r for r in proxy.requests() if r.api_key == SASL_AUTHENTICATE]


def test_sasl_ssl_runs_the_exchange_inside_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    files = write_pems(ca, tmp_path)
    for proxy in sasl_broker(tls=server_context(ca, HOST)):
        secured = security(
            "SCRAM-SHA-512",
            "SASL_SSL",
            ssl_cafile=files["ca"],
            ssl_certfile=files["cert"],
            ssl_keyfile=files["key"],
        )
        try_every_client(proxy.address, secured)
        assert proxy.sessions and all(s.tls_error is None for s in proxy.sessions)
        check_scram(proxy, "SCRAM-SHA-512", CLIENTS)


def test_casetrack_consume_with_a_password_file(
    proxy: KafkaProxy, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The operator's way: the password in a file named by a variable (or a flag); the
    process's command line and environment hold the path only."""
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n")
    env = {
        **cli_env,
        "CASETRACK_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CASETRACK_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "CASETRACK_KAFKA_SASL_USERNAME": USER,
    }
    args = ["consume", "--bootstrap-servers", proxy.address]
    args += ["--kafka-sasl-password-file", str(secret)]
    with running(args, env) as proc:
        wait_until(
            lambda: len([r for r in proxy.requests() if r.api_key == SASL_AUTHENTICATE]) >= 2,
            30,
            "casetrack consume's SASL exchange",
        )
        seen = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        seen += Path(f"/proc/{proc.pid}/environ").read_bytes()
        assert str(secret).encode() in seen and PASSWORD.encode() not in seen
    check_scram(proxy, "SCRAM-SHA-256", ("casetrack-consumer",))

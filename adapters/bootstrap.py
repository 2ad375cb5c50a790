"""The composition root: builds casetrack's objects from one Settings (adapters.settings).

Every entrypoint (adapters.cli.main, ``casetrack serve``, the uvicorn factory in
adapters.http.app, scripts/demo.py) reads the settings once and asks here for
what it needs, constructing no store, service or mailer itself. One function
per thing built, each taking the settings (the API's
services take the API's settings, which tests build by hand), after
cosmicpython's bootstrap.py.

The HTTP stack (FastAPI, the async pools, argon2) is imported by the functions
that build it, not here: it takes over a second, which every other command
would pay at start-up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import psycopg
import structlog

from adapters import logs
from adapters.postgres import embedded
from adapters.postgres.event_store import CaseStore
from adapters.privacy.vault import Vault
from adapters.server_secret import server_secret
from adapters.settings import Settings
from adapters.smtp import Mailer, SmtpMailer, SmtpSession
from projections import daemon

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from adapters.http.metrics import Metrics
    from adapters.http.services import Services
    from adapters.http.settings import ApiSettings
    from adapters.notifier import Notifier
    from adapters.postgres.leases import PgLeases
    from consumers.kafka.consumer import KafkaCaseConsumer
    from consumers.kafka.lag import LagReport
    from consumers.kafka.settings import ConsumerSettings


def configure_logging(settings: Settings) -> None:
    logs.configure(settings.log_level)


def database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started first if it is not running)."""
    return settings.database_url or embedded.server_url(settings.home)


def vault(settings: Settings) -> Vault:
    """Where the KEK is (made under the home when none is configured) and the server
    secret that keys the blind indexes (adapters.privacy)."""
    return Vault(
        settings.kek_file,
        server_secret(settings.secret_key, settings.home),
        generate=settings.kek is None,
        previous_kek_file=settings.previous_kek,
    )


def case_store(settings: Settings) -> CaseStore:
    """The event store, its schema checked (SchemaMissing when ``casetrack db init`` is due).

    A plain connection tries first, so that a server that cannot be reached or refuses
    us (a certificate sslmode=verify-full does not accept) raises psycopg's
    OperationalError with libpq's reason at once, not the store's pool's timeout.
    """
    url = database_url(settings)
    psycopg.connect(url, connect_timeout=10).close()
    store = CaseStore(url, settings.schema, vault(settings))
    try:
        store.check_schema()
    except BaseException:
        store.close()
        raise
    return store


def open_case_store(url: str, schema: str, vault: Vault) -> CaseStore:
    """The case store, once the database answers (unchecked). A top-level function of
    ``(url, schema)``, so that it pickles: a rebuild's worker processes open theirs with
    it (projections.ports.Opener).

    A store connects as it is made, and one that failed to connect leaves its pool
    open, reconnecting, out of reach: a plain connection tries first, so an outage
    raises here (psycopg's OperationalError) with nothing left behind.
    """
    psycopg.connect(url, connect_timeout=10).close()
    return CaseStore(url, schema, vault)


def store_opener(settings: Settings) -> Callable[[str, str], CaseStore]:
    """``open_case_store`` with this configuration's vault: what a rebuild's worker
    processes open their stores with (it pickles)."""
    return partial(open_case_store, vault=vault(settings))


def case_store_when_ready(settings: Settings, stop: threading.Event) -> CaseStore | None:
    """For daemons that may start before their database: the checked store once the
    database answers; None if ``stop`` is set first."""
    return daemon.open_store(
        partial(open_case_store, database_url(settings), settings.schema, vault(settings)), stop
    )


def projection_leases(settings: Settings) -> PgLeases:
    """What `casetrack project` shares the projections with others by: leases held on a
    connection of their own (adapters/postgres/leases.py)."""
    from adapters.postgres.leases import PgLeases

    return PgLeases(database_url(settings), settings.schema)


def lease_holders(store: CaseStore, names: list[str]) -> dict[str, str]:
    """Which `casetrack project` process (host:pid) holds each of ``names`` now."""
    from adapters.postgres.leases import holders

    with store.datastore.transaction(commit=False) as curs:
        return holders(curs, store.schema, names)


def kafka_consumer(store: CaseStore, kafka: ConsumerSettings) -> KafkaCaseConsumer:
    """A consumer of ``kafka.topic`` writing into ``store``; ``run`` it to consume. The
    consumer builds none of its collaborators: its broker clients, batch writer and the
    outbox its dead-letter publisher reads are chosen here."""
    from kafka import KafkaConsumer, KafkaProducer

    from consumers.batch import BatchWriter
    from consumers.kafka.consumer import KafkaCaseConsumer, KafkaClients
    from consumers.kafka.dead_letter_publisher import DeadLetterPublisher
    from consumers.kafka.record_batches import find_undecodable
    from consumers.kafka.settings import BOOTSTRAP_TIMEOUT_MS

    clients = KafkaClients(
        consumer=lambda: KafkaConsumer(**kafka.consumer_config()),
        producer=lambda: KafkaProducer(**kafka.producer_config()),
        publisher=lambda producer: DeadLetterPublisher(
            store.dead_letters, producer, kafka.topic, kafka.dead_letter_topic
        ),
        undecodable=lambda positions: find_undecodable(
            kafka.bootstrap_servers,
            positions,
            BOOTSTRAP_TIMEOUT_MS,
            kafka.security.client_config(),
        ),
    )
    return KafkaCaseConsumer(store, kafka, writer=BatchWriter(store), clients=clients)


def kafka_lag(store: CaseStore, kafka: ConsumerSettings, timeout: float = 5.0) -> LagReport:
    """The group's lag per partition (``casetrack consume --status``); joins no group."""
    from kafka import KafkaConsumer

    from consumers.kafka.lag import lag_report

    client = KafkaConsumer(**kafka.status_config(timeout))
    try:
        return lag_report(client, store, kafka, timeout)
    finally:
        client.close(autocommit=False)


def periodic_checkpoint(settings: Settings, store: CaseStore) -> Callable[[], None] | None:
    """The projector daemon's checkpoint signer: None (with a warning) without a signing key
    or when CASETRACK_CHECKPOINT_SECONDS is 0."""
    from adapters import signing_key
    from adapters.checkpointer import sign_if_grown
    from adapters.chores import Every

    if settings.checkpoint_seconds == 0:
        return None
    try:
        signer = signing_key.signer(settings.signing_key_file)
    except signing_key.SigningKeyError as error:
        log.warning("checkpoints are off", reason=str(error))
        return None
    return Every(settings.checkpoint_seconds, partial(sign_if_grown, store.integrity, signer))


def daemon_chores(settings: Settings, store: CaseStore) -> Callable[[], None]:
    """What `casetrack project` does after each catch-up besides projecting: sign a
    checkpoint when one is due, drop dead letters' raw input past its retention."""
    from datetime import timedelta

    from adapters import raw_input_expiry
    from adapters.chores import Every

    keep = timedelta(days=settings.dead_letter_raw_days)
    chores = [
        chore
        for chore in (
            periodic_checkpoint(settings, store),
            Every(
                raw_input_expiry.EVERY,
                partial(raw_input_expiry.expire_raw_input, store.dead_letters, keep),
            ),
        )
        if chore is not None
    ]

    def run() -> None:
        for chore in chores:
            chore()

    return run


def mailer(settings: Settings) -> Mailer:
    return SmtpMailer(settings.smtp)


def notifier(settings: Settings, poll_interval: float = 1.0, workers: int = 2) -> Notifier:
    """`casetrack notify`'s sender: the outbox, the SMTP server, the webhook client;
    ``workers`` sending threads per channel, each with its own SMTP session and client."""
    from adapters.notifier import Notifier, NotifierSettings
    from adapters.webhook_client import WebhookClient

    return Notifier(
        NotifierSettings(
            url=database_url(settings),
            schema=settings.schema,
            public_url=settings.public_url,
            group_seconds=settings.notify_group_seconds,
            poll_interval=poll_interval,
            keep_days=settings.notify_keep_days,
            workers=workers,
        ),
        SmtpSession(settings.smtp),
        WebhookClient(settings.webhook_allow_private, settings.webhook_timeout),
        notices=SmtpMailer(settings.smtp),
        more_mailers=lambda: SmtpSession(settings.smtp),
        more_clients=lambda: WebhookClient(
            settings.webhook_allow_private, settings.webhook_timeout
        ),
    )


def api_settings(settings: Settings) -> ApiSettings:
    """What the API needs; makes the server secret under the home the first time it is needed
    (SecretError when that file is damaged)."""
    from adapters.http.settings import ApiSettings

    return ApiSettings(
        database_url=database_url(settings),
        schema=settings.schema,
        mailer=mailer(settings),
        secret_key=server_secret(settings.secret_key, settings.home),
        vault=vault(settings),
        session_ttl=settings.session_ttl,
        max_lag_events=settings.ready_max_lag,
        pool_max=settings.db_pool_max,
        read_connections=settings.read_connections,
        trusted_proxies=settings.trusted_proxies,
        metrics_token=settings.metrics_token,
        webhook_allow_private=settings.webhook_allow_private,
    )


def services(api: ApiSettings, metrics: Metrics) -> Services:
    """What the routes share; the app builds it at each start-up (create_app's lifespan)."""
    from psycopg_pool import AsyncConnectionPool

    from adapters.http.estimates import Estimates
    from adapters.http.outbox import Outbox
    from adapters.http.passwords import Passwords
    from adapters.http.services import Services, configure_connection
    from adapters.postgres.accounts_store import AccountsStore
    from adapters.postgres.auditors_store import AuditorsStore
    from adapters.postgres.lane import ConnectionLane
    from adapters.postgres.rate_limits import RateLimits
    from adapters.postgres.reads_store import ReadsStore
    from adapters.postgres.webhooks_store import WebhooksStore

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        api.database_url,
        min_size=api.pool_min,
        max_size=api.pool_max,
        kwargs={"autocommit": True},
        configure=configure_connection,
        open=False,
        timeout=10.0,
    )
    lane = ConnectionLane(api.database_url, api.read_connections, configure_connection)
    store = CaseStore(api.database_url, api.schema, api.vault)
    return Services(
        settings=api,
        pool=pool,
        lane=lane,
        case_store=store,
        accounts=AccountsStore(pool, api.schema),
        reads=ReadsStore(lane, api.schema),
        rates=RateLimits(pool, api.schema),
        auditors=AuditorsStore(pool, api.schema),
        passwords=Passwords(api.hasher),
        estimates=Estimates(store, api.clock, api.estimate_ttl_seconds),
        metrics=metrics,
        outbox=Outbox(),
        webhooks=WebhooksStore(pool, api.schema),
    )


def http_app(api: ApiSettings) -> FastAPI:
    """The tracker API on ``api`` (tests pass their own: clock, mailer, hasher cost, limits)."""
    from adapters.http.app import create_app

    return create_app(api, services)


def api_app(settings: Settings) -> FastAPI:
    return http_app(api_settings(settings))

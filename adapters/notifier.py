"""`casetrack notify`: sends what the notification outbox holds, and marks it sent.

Each message is one transaction: claim its rows (``FOR UPDATE SKIP LOCKED``, so several
notifiers share the work without sending a row twice), send, mark, commit. A notifier
killed after sending and before its commit leaves the rows pending, unlocked: the next
claim sends them again. That is the one duplicate possible, and it repeats the
message's identity (the email's Message-ID, the webhook's ``webhook-id``) so receivers
can drop it (docs/notifications.md).

Emails: an account's changes wait until the oldest has waited ``group_seconds``, then go
as one message in the account's language, unless the account opted out or was erased
(the rows are marked ``skipped``). Webhooks: one delivery per row, signed (Standard
Webhooks), retried with a growing pause (domain.backoff.retry_delay) for three days,
then dead-lettered; an endpoint that failed every delivery for those three days is
disabled and its owner told (log and email). An SMTP server or receiver that is down
only delays rows: they stay pending, nothing is lost.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
import psycopg
import structlog
from psycopg.rows import DictRow, dict_row
from psycopg.sql import SQL, Identifier

from adapters.chores import Every
from adapters.mail_texts import change_message, endpoint_disabled_message
from adapters.postgres.webhooks_store import EndpointHealth
from adapters.smtp import MailNotSent
from adapters.webhook_client import DeliveryFailed, UrlRefused, WebhookClient
from domain import webhook_signature
from domain.backoff import RetryBackoff, retry_delay
from projections.daemon import wait_for_notification
from projections.failures import unavailable
from projections.notify_changes import served
from projections.notify_outbox import CHANNEL, GIVE_UP, Delivery, EmailGroup, Outbox

log = structlog.get_logger("casetrack.notify")

EMAIL_RETRY_CAP = 300.0  # seconds: a mail server back after an outage is used soon
WEBHOOK_RETRY_CAP = 3600.0


class NotificationMailer(Protocol):
    def send(self, to: str, subject: str, body: str, message_id: str | None = None) -> None: ...


@dataclass(frozen=True)
class NotifierSettings:
    url: str
    schema: str
    public_url: str
    group_seconds: float = 900.0
    poll_interval: float = 1.0
    batch: int = 100
    keep_days: int = 30  # settled rows (sent, skipped, dead) are deleted after this
    workers: int = 1  # sending threads per channel (they wait on the network, not the CPU)


class Notifier:
    """``mailer`` and ``webhooks`` are the first email and webhook worker's; further
    workers (``settings.workers`` per channel) get their own from ``more_mailers`` and
    ``more_clients`` (an SMTP session and a webhook client serve one thread). ``notices``
    (default: ``mailer``) sends the rare notice that an endpoint was disabled."""

    def __init__(
        self,
        settings: NotifierSettings,
        mailer: NotificationMailer,
        webhooks: WebhookClient,
        clock: Callable[[], float] = time.time,
        notices: NotificationMailer | None = None,
        more_mailers: Callable[[], NotificationMailer] | None = None,
        more_clients: Callable[[], WebhookClient] | None = None,
    ) -> None:
        self.settings = settings
        self.mailer = mailer
        self.notices = notices or mailer
        self.webhooks = webhooks
        self._more_mailers = more_mailers
        self._more_clients = more_clients
        self._mailers: dict[str, NotificationMailer] = {}
        self._clients: dict[str, WebhookClient] = {}
        self.clock = clock
        self.outbox = Outbox(settings.schema)
        self.health = EndpointHealth(settings.schema)
        self._conns: dict[str, psycopg.Connection[DictRow]] = {}
        # The mail server is one for all: once it fails, no email is tried for a pause
        # (1 s doubling to a minute) instead of each account's in turn.
        self._mail_backoff = RetryBackoff(1.0, 60.0)
        self._mail_paused_until = 0.0
        self._prune = Every(3600.0, self._prune_now)
        # run()'s stop event: a batch stops between messages once it is set, so SIGTERM
        # waits for the message in flight (its own timeout), not for the batch
        self._stop = threading.Event()

    # ---------------------------------------------------------------- the loop

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop``: emails and webhooks each in a worker thread of their own
        (a slow receiver never holds up the mail, nor the reverse), each waking on the
        projection's NOTIFY and polling besides. Database outages are waited out (0.5 s
        doubling to 30 s)."""
        failures: list[BaseException] = []
        self._stop = stop

        def work(send: Callable[[], int]) -> None:
            try:
                self._loop(send, stop)
            except BaseException as e:  # a bug: stop the other worker too, then raise it
                failures.append(e)
                stop.set()

        count = max(1, self.settings.workers)
        emails = count if self._more_mailers else 1
        hooks = count if self._more_clients else 1
        workers = [
            threading.Thread(target=work, args=(self._emails_and_chores,), name=f"email-{i}")
            for i in range(emails)
        ] + [
            threading.Thread(target=work, args=(self.send_webhooks,), name=f"webhook-{i}")
            for i in range(hooks)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self.close()
        if failures:
            raise failures[0]

    def _loop(self, send: Callable[[], int], stop: threading.Event) -> None:
        backoff = RetryBackoff(0.5, 30.0)
        listener: psycopg.Connection[Any] | None = None
        try:
            while not stop.is_set():
                try:
                    if listener is None or listener.closed:
                        listener = psycopg.connect(self.settings.url, autocommit=True)
                        listener.execute(SQL("LISTEN {}").format(Identifier(CHANNEL)))
                    while not stop.is_set() and send() > 0:
                        pass
                    backoff.succeeded()
                    wait_for_notification(listener, self.settings.poll_interval, stop)
                except Exception as e:
                    if not unavailable(e):
                        raise
                    self._drop(threading.current_thread().name)
                    if listener is not None:
                        listener.close()
                        listener = None
                    wait = backoff.failed()
                    log.warning("database unavailable, retrying", error=type(e).__name__)
                    stop.wait(wait)
        finally:
            if listener is not None:
                listener.close()

    def _emails_and_chores(self) -> int:
        sent = self.send_emails()
        if threading.current_thread().name == "email-0":
            self._prune()
        return sent

    def _prune_now(self) -> None:
        self.prune()

    def prune(self) -> int:
        """Delete settled rows older than ``keep_days`` (in batches); how many."""
        conn = self._connection(threading.current_thread().name)
        total = 0
        while True:
            with conn.transaction(), conn.cursor() as curs:
                deleted = self.outbox.prune(curs, self.settings.keep_days)
            total += deleted
            if deleted < 10_000:
                break
        if total:
            log.info("old notifications deleted", rows=total)
        return total

    def round(self) -> int:
        """Send one batch of what is due (emails, then webhooks); how many messages went out
        or were settled."""
        return self.send_emails() + self.send_webhooks()

    def close(self) -> None:
        mailers = (self.mailer, self.notices, *self._mailers.values())
        for mailer in {id(m): m for m in mailers}.values():
            closer = getattr(mailer, "close", None)  # an SMTP session keeps its connection
            if closer is not None:
                closer()
        for client in {id(c): c for c in (self.webhooks, *self._clients.values())}.values():
            client.close()
        self._mailers.clear()
        self._clients.clear()
        for name in list(self._conns):
            self._drop(name)

    def _drop(self, name: str) -> None:
        conn = self._conns.pop(name, None)
        if conn is not None:
            conn.close()

    def _mailer(self) -> NotificationMailer:
        """This thread's mailer: the first worker's (and the caller's of ``round``) is
        ``mailer``, each further worker's its own."""
        name = threading.current_thread().name
        if self._more_mailers is None or not name.startswith("email-") or name == "email-0":
            return self.mailer
        if name not in self._mailers:
            self._mailers[name] = self._more_mailers()
        return self._mailers[name]

    def _client(self) -> WebhookClient:
        name = threading.current_thread().name
        if self._more_clients is None or not name.startswith("webhook-") or name == "webhook-0":
            return self.webhooks
        if name not in self._clients:
            self._clients[name] = self._more_clients()
        return self._clients[name]

    def _connection(self, name: str) -> psycopg.Connection[DictRow]:
        conn = self._conns.get(name)
        if conn is None or conn.closed:
            conn = self._conns[name] = psycopg.connect(self.settings.url, row_factory=dict_row)
        return conn

    # ---------------------------------------------------------------- email

    def send_emails(self) -> int:
        if time.monotonic() < self._mail_paused_until:
            return 0
        conn = self._connection(threading.current_thread().name)
        with conn.transaction(), conn.cursor() as curs:
            due = self.outbox.due_accounts(curs, self.settings.group_seconds, self.settings.batch)
        name = threading.current_thread().name
        if name.startswith("email-") and len(due) > 1:  # workers start apart in the list
            shift = int(name[6:]) * len(due) // max(1, self.settings.workers) % len(due)
            due = due[shift:] + due[:shift]
        settled = 0
        for account_id in due:
            if self._stop.is_set():
                break
            with conn.transaction(), conn.cursor() as curs:
                group = self.outbox.claim_group(curs, account_id)
                if group is None:
                    continue
                sent = self._email(curs, group)
            if sent is None:  # the mail server failed: pause
                self._mail_paused_until = time.monotonic() + self._mail_backoff.failed()
                return settled
            self._mail_backoff.succeeded()
            settled += sent
        return settled

    def _email(self, curs: psycopg.Cursor[DictRow], group: EmailGroup) -> int | None:
        """1 when settled (sent or skipped), None when the mail server failed."""
        ids = [r.id for r in group.rows]
        if not group.wants:
            self.outbox.done(curs, ids, state="skipped")
            return 1
        files: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in group.rows:
            files[row.application_number].append(row.change)
        subject, body = change_message(
            group.language, list(files.items()), self.settings.public_url
        )
        try:
            self._mailer().send(group.email, subject, body, message_id=group.message_id)
        except MailNotSent as e:
            attempts = max(r.attempts for r in group.rows) + 1
            delay = retry_delay(attempts, cap=EMAIL_RETRY_CAP)
            if self.outbox.failed(curs, ids, str(e), delay):
                log.error("notification email dead-lettered", rows=len(ids))
            else:
                log.warning("notification email not sent", error=str(e), retry_in=round(delay))
            return None
        self.outbox.done(curs, ids)
        log.info("notification email sent", changes=len(ids), files=len(files))
        return 1

    # ---------------------------------------------------------------- webhooks

    def send_webhooks(self) -> int:
        conn = self._connection(threading.current_thread().name)
        sent = 0
        for _ in range(self.settings.batch):
            if self._stop.is_set():
                break
            with conn.transaction(), conn.cursor() as curs:
                delivery = self.outbox.claim_delivery(curs)
                if delivery is None:
                    return sent
                sent += self._deliver(curs, delivery)
        return sent

    def _deliver(self, curs: psycopg.Cursor[DictRow], delivery: Delivery) -> int:
        row = delivery.row
        if delivery.url is None or delivery.secret is None:
            self.outbox.dead(curs, [row.id], "the endpoint was deleted")
            return 1
        if delivery.disabled:
            self.outbox.dead(curs, [row.id], "the endpoint is disabled")
            return 1
        body = webhook_body(row.application_number, row.language, row.change)
        timestamp = int(self.clock())
        headers = webhook_signature.headers(delivery.secret, delivery.message_id, timestamp, body)
        try:
            self._client().post(delivery.url, body, headers)
        except (DeliveryFailed, UrlRefused) as e:
            error = str(e) if isinstance(e, DeliveryFailed) else f"refused: {e}"
            delay = retry_delay(row.attempts + 1, cap=WEBHOOK_RETRY_CAP)
            self.health.failed(curs, row.recipient)
            self.outbox.hold_endpoint(curs, row.recipient, delay)
            if self.outbox.failed(curs, [row.id], error, delay):
                log.error("webhook delivery dead-lettered", delivery=row.id, endpoint=row.recipient)
                self._maybe_disable(curs, delivery)
            else:
                log.warning(
                    "webhook delivery failed", endpoint=row.recipient, error=error,
                    retry_in=round(delay),
                )  # fmt: skip
            return 0
        self.outbox.done(curs, [row.id])
        if delivery.failing_since is not None:  # a statement per delivery saved otherwise
            self.health.succeeded(curs, row.recipient)
        return 1

    def _maybe_disable(self, curs: psycopg.Cursor[DictRow], delivery: Delivery) -> None:
        """An endpoint that has failed every delivery for GIVE_UP is turned off."""
        since = delivery.failing_since
        if since is None or time.time() - since.timestamp() < GIVE_UP.total_seconds():
            return
        owner = self.health.disable(curs, delivery.row.recipient)
        if owner is None:
            return
        email, language, url = owner
        host = urlsplit(url).hostname or "?"
        log.error("webhook endpoint disabled", endpoint=delivery.row.recipient, host=host)
        if email:
            subject, text = endpoint_disabled_message(language, delivery.row.recipient, host)
            try:
                self.notices.send(email, subject, text)
            except MailNotSent as e:
                log.warning("endpoint notice not sent", error=str(e))


def webhook_body(number: str, language: str, change: dict[str, Any]) -> bytes:
    """The JSON a receiver gets: Standard Webhooks' type, timestamp and data; the data
    holds the application number, the change and the new status, as the role sees them."""
    lang = "fr" if language == "fr" else "en"
    return orjson.dumps(
        {
            "type": change["type"],
            "timestamp": change["status"].get("last_updated"),
            "data": {
                "application_number": number,
                "change": served(change, lang),
                "status": change["status"],
            },
        }
    )

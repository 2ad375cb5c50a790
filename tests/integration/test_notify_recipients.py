"""Who receives a change (docs/notifications.md, "Who"): the accounts linked to
the file when the event was recorded, and the webhook endpoints of such accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.postgres.event_store import CaseStore
from consumers.file_ingest import ingest_lines
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.registry import select
from tests.notify_fixtures import add_endpoint, feed, line, link, outbox, project, received_payload

NUMBER = "F700000001"


@pytest.mark.parametrize("by", ["live", "rebuild"])
def test_a_file_linked_after_an_event_gets_no_webhook_for_it(store: CaseStore, by: str) -> None:
    """The webhook rows ignored account_links.linked_at (notify_outbox's _insert and
    _add_staged): a file linked after an event was recorded, and before the notifications
    projection applied it (a lag, a rebuild), got that past event by webhook, not by email."""
    feed(store, line(NUMBER, "application.received", received_payload()))
    link(store, NUMBER, "principal_applicant")
    # Recorded now; the notifications projection has not applied it yet.
    ingest_lines(
        [line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"})], "t", store
    )
    # A representative with an endpoint registered long ago links the file after that.
    rep = link(store, NUMBER, "representative", at=datetime.now(UTC) + timedelta(seconds=1))
    add_endpoint(store, rep, "https://93.184.215.14/hook", "whsec_" + "A" * 32)
    if by == "live":
        project(store)
    else:
        for projection in select(None):
            if projection.name != "notifications":
                Projector(store, projection).catch_up()
        rebuild(store, select(["notifications"]))
    assert {r["role"] for r in outbox(store)} == {"principal_applicant"}  # the change is made
    assert [r["channel"] for r in outbox(store) if r["role"] == "representative"] == []


class _Mailer:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, to: str, subject: str, body: str, message_id: str | None = None) -> None:
        self.sent.append(to)


def test_an_erased_representative_gets_no_more_webhooks(store: CaseStore) -> None:
    """An erased account's endpoints kept their URL and secret and still got its pending
    deliveries (adapters/notifier.py checks no account state; its emails are skipped)."""
    from adapters.notifier import Notifier, NotifierSettings
    from adapters.privacy.erasure import erase
    from adapters.webhook_client import WebhookClient
    from tests.notify_fixtures import receiver

    feed(store, line(NUMBER, "application.received", received_payload()))
    rep = link(store, NUMBER, "representative")
    with receiver() as hooks:
        add_endpoint(store, rep, hooks.url, hooks.secret)
        feed(store, line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}))
        assert [r["channel"] for r in outbox(store)] == ["email", "webhook"]
        erase(store, people=["mp@law.example"])  # the representative, before the notifier ran
        mailer = _Mailer()
        notifier = Notifier(
            NotifierSettings(store.url, store.schema, "https://t.example", group_seconds=0),
            mailer,
            WebhookClient(allow_private=True, timeout=2.0),
        )
        notifier.round()
        notifier.close()
        assert mailer.sent == []  # the email is skipped ...
        assert hooks.wait(1, timeout=1.0) == []  # ... and the webhook too
    assert {r["state"] for r in outbox(store)} == {"skipped", "dead"}

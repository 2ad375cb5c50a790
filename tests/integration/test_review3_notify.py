"""Review-3: who receives a change (docs/notifications.md, "Who"): the accounts linked to
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

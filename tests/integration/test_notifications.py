"""Change notifications end to end on real PostgreSQL, a real SMTP server (aiosmtpd) and a
real webhook receiver that verifies signatures with the Standard Webhooks reference
library: each visible change reaches each linked reader once, as their role sees it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.notifier import Notifier, NotifierSettings
from adapters.postgres.event_store import CaseStore
from adapters.smtp import SmtpSession, SmtpSettings
from adapters.smtp_sink import MailFolder
from adapters.smtp_sink import start as start_sink
from adapters.webhook_client import WebhookClient
from projections.rebuild import rebuild
from projections.registry import select
from tests.api.conftest import free_port
from tests.notify_fixtures import add_endpoint, feed, line, link, outbox, received_payload, receiver
from tests.stores import execute

NUMBER = "F700000001"


class Sink:
    """The SMTP sink on a fixed port, stopped and started again at will."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.controller: Any = None

    def start(self) -> None:
        self.controller = start_sink(self.folder, "127.0.0.1", self.port)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def messages(self) -> list[Any]:
        return MailFolder(self.folder).messages()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    s = Sink(tmp_path / "mail")
    s.start()
    yield s
    s.stop()


def notifier(store: CaseStore, sink: Sink, group_seconds: float = 0.0) -> Notifier:
    return Notifier(
        NotifierSettings(
            url=store.url,
            schema=store.schema,
            public_url="https://tracker.example",
            group_seconds=group_seconds,
        ),
        SmtpSession(SmtpSettings(host="127.0.0.1", port=sink.port, timeout=5.0)),
        WebhookClient(allow_private=True, timeout=2.0),
    )


def drain(n: Notifier, done: Callable[[], bool], timeout: float = 20.0) -> None:
    """Run rounds until ``done()`` (bounded)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not delivered in time"
        n.round()
        time.sleep(0.05)


def body(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content())


def test_each_reader_is_told_what_their_role_sees(store: CaseStore, sink: Sink) -> None:
    feed(store, line(NUMBER, "application.received", received_payload("fr")))
    applicant = link(store, NUMBER, "principal_applicant", email="a@example.org", language="fr")
    link(store, NUMBER, "sponsor", email="s@example.org", language="en")
    feed(
        store,
        line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}),
        line(NUMBER, "medical.requested", {"due_on": "2024-05-01"}),
        line(NUMBER, "correspondence.sent", {"subject": "Lettre sur la santé d'Amara"}),
    )
    n = notifier(store, sink)
    drain(n, lambda: len(sink.messages()) >= 2)
    n.round()
    messages = sink.messages()
    assert len(messages) == 2  # one grouped message each
    by_to = {m["To"]: m for m in messages}
    applicant_text, sponsor_text = body(by_to["a@example.org"]), body(by_to["s@example.org"])
    # The applicant: every line, in French; the sponsor: the acknowledgement only, in English.
    assert "accusé de réception" in applicant_text and "examen médical" in applicant_text
    assert "Nous vous avons envoyé un message" in applicant_text
    assert "acknowledgement of receipt" in sponsor_text
    for hidden in ("medical", "médical", "sent you a message", "Amara", "santé", "Okonkwo"):
        assert hidden not in sponsor_text
    for m in messages:
        assert NUMBER not in m["Subject"] and "Okonkwo" not in m["Subject"]
        assert m["Message-ID"].endswith(".notify@casetrack.invalid>")
    assert f"https://tracker.example/fr/applications/{NUMBER}" in applicant_text
    assert f"https://tracker.example/en/applications/{NUMBER}" in sponsor_text
    assert {r["state"] for r in outbox(store)} == {"sent"}
    roles = {(r["recipient"], r["role"]) for r in outbox(store)}
    assert (applicant, "principal_applicant") in roles


def test_changes_in_the_window_are_grouped(store: CaseStore, sink: Sink) -> None:
    feed(store, line(NUMBER, "application.received", received_payload()))
    link(store, NUMBER, "principal_applicant")
    feed(store, line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}))
    n = notifier(store, sink, group_seconds=1.5)
    assert n.round() == 0  # the window is open
    feed(store, line(NUMBER, "biometrics.requested", {"due_on": "2024-04-01"}))
    time.sleep(1.6)
    drain(n, lambda: len(sink.messages()) >= 1)
    [message] = sink.messages()
    text = body(message)
    assert "acknowledgement of receipt" in text and "biometrics" in text


def test_opted_out_accounts_get_nothing_until_back_in(store: CaseStore, sink: Sink) -> None:
    feed(store, line(NUMBER, "application.received", received_payload()))
    account = link(store, NUMBER, "principal_applicant", notify=False)
    feed(store, line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}))
    n = notifier(store, sink)
    n.round()
    assert sink.messages() == []
    assert [r["state"] for r in outbox(store)] == ["skipped"]
    execute(store, "UPDATE {schema}.accounts SET notify = true WHERE account_id = %s", (account,))
    feed(store, line(NUMBER, "biometrics.requested", {"due_on": "2024-04-01"}))
    drain(n, lambda: len(sink.messages()) >= 1)
    assert "biometrics" in body(sink.messages()[0])
    assert "acknowledgement" not in body(sink.messages()[0])  # the skipped change stays skipped


def test_smtp_down_then_back_loses_nothing(store: CaseStore, sink: Sink) -> None:
    feed(store, line(NUMBER, "application.received", received_payload()))
    for _ in range(3):
        link(store, NUMBER, "principal_applicant")
    sink.stop()
    feed(store, line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}))
    n = notifier(store, sink)
    n.round()
    pending = outbox(store)
    assert {r["state"] for r in pending} == {"pending"}
    # one try, then the notifier pauses its mail: not one failure per account
    assert sorted(r["attempts"] for r in pending) == [0, 0, 1]
    assert n.round() == 0  # still paused
    sink.start()
    drain(n, lambda: len(sink.messages()) >= 3)
    time.sleep(0.3)
    n.round()
    assert len(sink.messages()) == 3
    assert {r["state"] for r in outbox(store)} == {"sent"}


def test_webhooks_retry_after_500_and_arrive_once(store: CaseStore, sink: Sink) -> None:
    feed(store, line(NUMBER, "application.received", received_payload()))
    rep = link(store, NUMBER, "representative")
    with receiver([500, 500]) as hooks:
        add_endpoint(store, rep, hooks.url, hooks.secret)
        feed(
            store,
            line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}),
            line(NUMBER, "medical.requested", {"due_on": "2024-04-01"}),
            line(NUMBER, "medical.passed", {"completed_on": "2024-04-01"}),
        )
        n = notifier(store, sink)
        drain(n, lambda: len(hooks.ids()) >= 3)
        n.round()
        assert hooks.refused == 0  # every signature verified by standardwebhooks
        assert sorted(hooks.answered).count(500) == 2
        assert len(hooks.ids()) == len(set(hooks.ids())) == 3
        first = next(d.body for d in hooks.deliveries if d.body["data"]["change"]["version"] == 2)
        assert first["type"] == "application.status_changed"
        assert first["data"]["application_number"] == NUMBER
        assert first["data"]["status"]["status"] == "in_progress"
        last = next(d.body for d in hooks.deliveries if d.body["data"]["change"]["version"] == 4)
        assert last["type"] == "application.updated"
        assert last["data"]["change"]["history"]["title"] == "We received your medical exam results"
    webhooks = outbox(store, "webhook")
    assert {r["state"] for r in webhooks} == {"sent"}
    assert max(r["attempts"] for r in webhooks) >= 2


def test_a_rebuild_resends_nothing(store: CaseStore, sink: Sink) -> None:
    feed(store, line(NUMBER, "application.received", received_payload()))
    link(store, NUMBER, "principal_applicant")
    rep = link(store, NUMBER, "representative")
    with receiver() as hooks:
        add_endpoint(store, rep, hooks.url, hooks.secret)
        feed(store, line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}))
        n = notifier(store, sink)
        drain(n, lambda: len(sink.messages()) >= 2 and len(hooks.ids()) >= 1)
        before = outbox(store)
        rebuild(store, select(None))
        # a late link must not receive the file's past after the rebuild either
        link(store, NUMBER, "sponsor", at=before[0]["recorded_at"].replace(year=2100))
        rebuild(store, select(["notifications"]))
        assert outbox(store) == before
        n.round()
        assert len(sink.messages()) == 2 and len(hooks.ids()) == 1
        feed(store, line(NUMBER, "biometrics.requested", {"due_on": "2024-04-01"}))
        drain(n, lambda: len(sink.messages()) >= 4 and len(hooks.ids()) >= 2)
        time.sleep(0.2)
        n.round()
        assert len(sink.messages()) == 4 and len(hooks.ids()) == 2


def test_a_rebuild_announces_what_the_live_view_had_not_reached(
    store: CaseStore, sink: Sink
) -> None:
    from projections.projector import Projector

    feed(store, line(NUMBER, "application.received", received_payload()))
    link(store, NUMBER, "principal_applicant")
    from consumers.file_ingest import ingest_lines

    ingest_lines(
        [line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"})], "t", store
    )
    for projection in select(None):
        if projection.name != "notifications":
            Projector(store, projection).catch_up()
    rebuild(store, select(["notifications"]))
    n = notifier(store, sink)
    drain(n, lambda: len(sink.messages()) >= 1)
    assert "acknowledgement of receipt" in body(sink.messages()[0])


def test_an_endpoint_that_is_down_costs_one_attempt_per_pause(store: CaseStore, sink: Sink) -> None:
    feed(store, line(NUMBER, "application.received", received_payload()))
    rep = link(store, NUMBER, "representative")
    with receiver([503]) as hooks:
        add_endpoint(store, rep, hooks.url, hooks.secret)
        feed(
            store,
            line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}),
            line(NUMBER, "biometrics.requested", {"due_on": "2024-04-01"}),
            line(NUMBER, "medical.requested", {"due_on": "2024-05-01"}),
        )
        n = notifier(store, sink)
        n.send_webhooks()
        assert hooks.answered == [503]  # the other two wait with it
        assert {r["state"] for r in outbox(store, "webhook")} == {"pending"}
        drain(n, lambda: len(hooks.ids()) >= 3)
        assert sorted(hooks.answered) == [200, 200, 200, 503]


def test_settled_rows_are_deleted_after_the_keep_days(store: CaseStore, sink: Sink) -> None:
    feed(store, line(NUMBER, "application.received", received_payload()))
    link(store, NUMBER, "principal_applicant")
    feed(store, line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}))
    n = notifier(store, sink)
    drain(n, lambda: len(sink.messages()) >= 1)
    feed(store, line(NUMBER, "biometrics.requested", {"due_on": "2024-04-01"}))
    execute(store, "UPDATE {schema}.notify_outbox SET created_at = now() - interval '31 days'")
    assert n.prune() == 1  # the sent one; the pending one stays, however old
    [left] = outbox(store)
    assert left["state"] == "pending"
    drain(n, lambda: len(sink.messages()) >= 2)
    # a rebuild after the pruning still resends nothing
    rebuild(store, select(None))
    n.round()
    assert len(sink.messages()) == 2


def test_a_rebuild_behind_the_live_view_announces_what_it_would_have(store: CaseStore) -> None:
    """The live view at P, the log at H: the rebuild replays everything (nothing caught up
    event by event), stages the changes after P and announces them at the swap: exactly the
    rows the live projection makes for (P, H], and nothing for what came before P."""
    from consumers.file_ingest import ingest_lines
    from projections.projector import Projector
    from tests.stores import rows

    other, unlinked = "F700000002", "F700000003"
    feed(
        store,
        *(line(n, "application.received", received_payload()) for n in (NUMBER, other, unlinked)),
    )
    link(store, NUMBER, "principal_applicant")
    link(store, NUMBER, "sponsor")
    rep = link(store, NUMBER, "representative")
    add_endpoint(store, rep, "https://crm.example/hooks", "whsec_" + "A" * 32)
    link(store, other, "principal_applicant", language="fr")
    feed(store, line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}))
    before = outbox(store)
    assert before  # announced by the live projection, before P
    tail = [
        line(n, kind, payload)
        for n in (NUMBER, other, unlinked)
        for kind, payload in (
            ("biometrics.requested", {"due_on": "2024-04-01"}),
            ("medical.requested", {"due_on": "2024-05-01"}),
        )
    ] + [line(other, "application.acknowledged", {"acknowledged_on": "2024-03-02"})]
    assert ingest_lines(tail, "t", store).accepted == len(tail)
    notifications = select(["notifications"])[0]
    live = Projector(store, notifications)
    behind = live.position()

    def made(since: int) -> list[tuple[Any, ...]]:
        found = rows(
            store,
            "SELECT case_id, version, channel, recipient, role, application_number, language,"
            " change, recorded_at FROM {schema}.notify_outbox WHERE id > %s ORDER BY 1, 2, 3, 4",
            (since,),
        )
        return [tuple(r.values()) for r in found]

    last = max(r["id"] for r in before)
    live.catch_up()  # what the live projection makes for (P, H]
    expected = made(last)
    assert {r[1] for r in expected} == {2, 3, 4}  # the tail's versions, some for each file
    execute(store, "DELETE FROM {schema}.notify_outbox WHERE id > %s", (last,))
    execute(
        store,
        "UPDATE {schema}.projection_positions SET position = %s WHERE name = 'notifications'",
        (behind,),
    )

    report = rebuild(store, select(["notifications"]))
    assert report.caught_up == 0  # the replay went to the head
    assert made(last) == expected
    assert outbox(store)[: len(before)] == before
    assert rows(store, "SELECT count(*) AS n FROM {schema}.notify_staged")[0]["n"] == 0
    rebuild(store, select(None))  # at the head now: nothing more to announce
    assert made(last) == expected

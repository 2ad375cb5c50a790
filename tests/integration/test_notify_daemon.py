"""`casetrack notify` as operators run it (child processes): killed with SIGKILL in the
middle of a batch, two at once, stopped with SIGTERM; `casetrack webhooks deliveries`
and `redeliver` on a dead-lettered delivery."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from adapters.postgres.event_store import CaseStore
from adapters.smtp_sink import start as start_sink
from tests.api.conftest import free_port
from tests.cli_process import run, running, stop_with_sigterm
from tests.notify_fixtures import add_endpoint, feed, line, link, outbox, received_payload, receiver
from tests.stores import execute

NUMBER = "F700000002"


@pytest.fixture
def mail(tmp_path: Path) -> tuple[Path, int]:
    return tmp_path / "mail", free_port()


def env_for(cli_env: dict[str, str], port: int) -> dict[str, str]:
    return {
        **cli_env,
        "CASETRACK_SMTP_PORT": str(port),
        "CASETRACK_NOTIFY_GROUP_SECONDS": "0",
        "CASETRACK_WEBHOOK_ALLOW_PRIVATE": "1",
    }


def message_ids(folder: Path) -> Counter[str]:
    from adapters.smtp_sink import MailFolder

    return Counter(str(m["Message-ID"]) for m in MailFolder(folder).messages())


def wait_for(check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigkill_mid_batch_resends_at_most_the_message_in_flight(
    store: CaseStore, cli_env: dict[str, str], mail: tuple[Path, int]
) -> None:
    folder, port = mail
    feed(store, line(NUMBER, "application.received", received_payload()))
    accounts = 150
    for _ in range(accounts):
        link(store, NUMBER, "principal_applicant")
    feed(store, line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}))
    sink = start_sink(folder, "127.0.0.1", port)
    env = env_for(cli_env, port)
    kills = 0
    workers = 2  # email threads: each may have one message in flight when killed
    try:
        for _ in range(3):  # kill it three times while it works through the batch
            with running(["notify", "--workers", str(workers)], env) as proc:
                seen = sum(message_ids(folder).values())
                wait_for(lambda seen=seen: sum(message_ids(folder).values()) >= seen + 20)
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                kills += 1
        with running(["notify"], env) as proc:
            wait_for(lambda: len(message_ids(folder)) >= accounts)
            time.sleep(0.5)
            stop_with_sigterm(proc)
    finally:
        sink.stop()
    ids = message_ids(folder)
    assert len(ids) == accounts  # every reader told
    twice = [i for i, n in ids.items() if n > 1]
    # The crash window only: a message in flight per thread per kill, sent once more.
    assert len(twice) <= kills * workers and all(ids[i] == 2 for i in twice)
    assert {r["state"] for r in outbox(store)} == {"sent"}


def test_two_notifiers_share_the_work_and_send_each_message_once(
    store: CaseStore, cli_env: dict[str, str], mail: tuple[Path, int]
) -> None:
    folder, port = mail
    feed(store, line(NUMBER, "application.received", received_payload()))
    accounts = 80
    for _ in range(accounts):
        link(store, NUMBER, "principal_applicant")
    sink = start_sink(folder, "127.0.0.1", port)
    env = env_for(cli_env, port)
    try:
        with running(["notify"], env) as first, running(["notify"], env) as second:
            time.sleep(1.0)  # both listening
            feed(
                store,
                line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}),
            )
            wait_for(lambda: len(message_ids(folder)) >= accounts)
            time.sleep(1.0)
            stop_with_sigterm(first)
            stop_with_sigterm(second)
    finally:
        sink.stop()
    ids = message_ids(folder)
    assert len(ids) == accounts and set(ids.values()) == {1}


def test_dead_deliveries_are_listed_and_redelivered(
    store: CaseStore, cli_env: dict[str, str], mail: tuple[Path, int]
) -> None:
    folder, port = mail
    feed(store, line(NUMBER, "application.received", received_payload()))
    rep = link(store, NUMBER, "representative", email="rep@law.example")
    env = env_for(cli_env, port)
    sink = start_sink(folder, "127.0.0.1", port)
    try:
        with receiver([500]) as hooks:
            endpoint = add_endpoint(store, rep, hooks.url, hooks.secret)
            feed(
                store,
                line(NUMBER, "application.acknowledged", {"acknowledged_on": "2024-03-01"}),
            )
            # The delivery and the endpoint have been failing for three days already.
            execute(
                store,
                "UPDATE {schema}.notify_outbox SET created_at = now() - interval '4 days'",
            )
            execute(
                store,
                "UPDATE {schema}.webhook_endpoints SET failing_since = now() - interval '4 days'",
            )
            assert run(["notify", "--once"], env).returncode == 0
            [row] = outbox(store, "webhook")
            assert row["state"] == "dead" and "HTTP 500" in row["last_error"]
            # the endpoint is off, and its owner told
            disabled = run(["webhooks", "deliveries", "--state", "dead", "--json"], env)
            assert disabled.returncode == 0, disabled.stderr
            [listed] = json.loads(disabled.stdout)
            assert listed["id"] == row["id"] and listed["endpoint_id"] == endpoint
            notices = [m for m in _messages(folder) if "turned off" in str(m["Subject"])]
            assert len(notices) == 1 and notices[0]["To"] == "rep@law.example"
            # fixed receiver: send it again
            again = run(["webhooks", "redeliver", str(row["id"])], env)
            assert again.returncode == 0, again.stderr
            assert run(["notify", "--once"], env).returncode == 0
            assert len(hooks.ids()) == 1
            assert outbox(store, "webhook")[0]["state"] == "sent"
            assert run(["webhooks", "redeliver", "999999"], env).returncode == 2
    finally:
        sink.stop()


def _messages(folder: Path) -> list[Any]:
    from adapters.smtp_sink import MailFolder

    return list(MailFolder(folder).messages()) if folder.exists() else []

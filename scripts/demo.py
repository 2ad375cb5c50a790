"""`make run`: the whole pipeline on embedded defaults, narrated for a newcomer.

Starts the embedded PostgreSQL (kept under ./.casetrack), the embedded Kafka
broker, a catch-all SMTP server, then `casetrack consume`, `casetrack project`,
`casetrack serve` and `casetrack notify` as separate processes, and the simulator publishing
realistic case flows. Every few seconds it shows a few cases moving through
their steps. Ctrl-C (or --duration) stops everything cleanly; the database
keeps what was ingested (`casetrack db stop` stops it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from children import CASETRACK, ROOT, child_env

from adapters import bootstrap, signing_key, smtp_sink
from adapters.kafka_broker import EmbeddedBroker, free_port
from adapters.postgres.event_store import CaseStore
from adapters.postgres.schema import init_schema
from adapters.settings import Settings
from projections import case_status
from projections.case_status_table import read
from projections.labels import text
from projections.registry import select
from projections.status import statuses
from simulation import kafka_feed

os.chdir(ROOT)

BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"


def say(line: str) -> None:
    print(line, flush=True)


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CASETRACK, *args],
        env=env,
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us; we stop them in order
    )


def show(store: CaseStore, numbers: list[str]) -> None:
    with store.datastore.transaction(commit=False) as curs:
        views = [(n, read(curs, store.schema, n)) for n in numbers]
    say(f"{DIM}{time.strftime('%H:%M:%S')}{RESET}")
    for number, view in views:
        if view is None:
            say(f"  {number}  (not received yet)")
            continue
        status = text(f"status.{view['status']}", "en")
        if view["outcome"]:
            status += f" ({view['outcome']})"
        done = sum(s in ("completed", "not_required") for s in view["activities"].values())
        steps = ", ".join(s["kind"] for s in view["next_steps"]) or "-"
        say(
            f"  {number}  {status:<34} activities done {done}/5  next steps: {steps:<22}"
            f" days {case_status.days_elapsed(view, date.today())}"
        )


def run(settings: Settings, duration: float | None, cases: int, rate: float) -> int:
    bootstrap.configure_logging(replace(settings, log_level="error"))  # the narration only
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    url = bootstrap.database_url(settings)
    schema = settings.schema
    where = settings.database_url or f"embedded PostgreSQL in {home}"
    say(f"{BOLD}casetrack{RESET}: {where}, schema {schema}")
    init_schema(url, schema)
    key = settings.signing_key_file
    if not key.exists():
        say(f"  a checkpoint signing key for the demo: {key} (`casetrack audit keygen`)")
        signing_key.create(key)

    broker = EmbeddedBroker(log=home / "broker.log").start()
    mail_port = free_port()
    mail_dir = home / "mail"
    sink = smtp_sink.start(mail_dir, port=mail_port)
    api_port = settings.demo_port
    env = {
        **child_env(url, schema, log_level="warning"),
        "CASETRACK_SMTP_HOST": "127.0.0.1",
        "CASETRACK_SMTP_PORT": str(mail_port),
        "CASETRACK_SMTP_TLS": "none",
        "CASETRACK_SIGNING_KEY": str(key),
        "CASETRACK_CHECKPOINT_SECONDS": "10",
        # change notifications: webhooks to receivers on this machine, links to this API
        "CASETRACK_WEBHOOK_ALLOW_PRIVATE": "1",
        "CASETRACK_PUBLIC_URL": f"http://127.0.0.1:{settings.demo_port}",
        "CASETRACK_NOTIFY_GROUP_SECONDS": "60",
    }
    logs_dir = home / "logs"
    logs_dir.mkdir(exist_ok=True)
    servers = broker.bootstrap_servers
    processes = {
        "consumer": start(
            ["consume", "--bootstrap-servers", servers], env, logs_dir / "consume.log"
        ),
        "projector": start(["project", "--poll-interval", "1"], env, logs_dir / "project.log"),
        "api": start(["serve", "--port", str(api_port)], env, logs_dir / "api.log"),
        "notifier": start(["notify"], env, logs_dir / "notify.log"),
    }
    say(f"  Kafka-compatible broker (Tansu, in memory) on {servers}, topic case-events")
    say(
        f"  consumer, projector, notifier and API (http://127.0.0.1:{api_port}, docs/api.md)"
        " running;"
        f" logs in {logs_dir}"
    )
    say(
        f"  mail to applicants (codes, change notifications) lands in {mail_dir}"
        f" (SMTP on 127.0.0.1:{mail_port})"
    )
    say(
        f"  the tracker's web pages: http://127.0.0.1:{api_port}/ (create an account with a"
        " file's details; its code is mailed there)"
    )

    seed = int(time.time()) % 1_000_000
    lines = kafka_feed.feed(cases, seed=seed, duplicate_share=0.02, poison_share=0.01)
    numbers = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "application.received":
            numbers.append(event["application_number"])
    third = len(numbers) // 3
    watched = numbers[third : third + 5]  # received mid-feed: seen moving, not already done
    say(
        f"\n{BOLD}Publishing {len(lines)} events of {cases} cases at {rate:.0f}/s"
        f" (processing times of months, compressed; 2% redeliveries, 1% poison){RESET}"
    )
    published = threading.Event()

    def publish() -> None:
        kafka_feed.publish(lines, servers, rate=rate)
        published.set()

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    store = bootstrap.case_store(settings)
    started = time.monotonic()
    announced = False
    try:
        while not stop.is_set():
            for name, process in processes.items():
                if process.poll() is not None:
                    say(f"{name} exited ({process.returncode}); see {logs_dir / (name + '.log')}")
                    stop.set()
            if not announced:
                show(store, watched)
            caught_up = all(s.head and not s.lag_events for s in statuses(store, select(None)))
            if published.is_set() and caught_up and not announced:
                announced = True
                hints(watched[0], api_port)
            if duration is not None and time.monotonic() - started > duration:
                break
            stop.wait(3)
    except KeyboardInterrupt:
        pass
    finally:
        say("\nstopping...")
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        sink.stop()
        broker.stop()
        store.close()
        say("stopped; the data stays in PostgreSQL (`.venv/bin/casetrack db stop` stops it)")
    return 0


def hints(number: str, port: int) -> None:
    say(f"\n{BOLD}All published events are stored and projected.{RESET} Try, in another shell:")
    say(
        f"  .venv/bin/casetrack status {number} --lang fr      # what the applicant sees\n"
        f"  .venv/bin/casetrack status {number} --role sponsor # what the sponsor sees\n"
        f"  .venv/bin/casetrack history {number}               # the audit trail\n"
        "  .venv/bin/casetrack audit verify                   # nobody altered the log\n"
        f"  .venv/bin/casetrack audit export {number} > bundle.json   # proofs, offline\n"
        f"  .venv/bin/casetrack privacy erase --application {number}  # crypto-shred its people\n"
        "  .venv/bin/casetrack dead-letters list              # the poison messages, and why\n"
        "  .venv/bin/casetrack projections status             # positions and lag\n"
        "  .venv/bin/casetrack consume --bootstrap-servers ... --status   # consumer lag\n"
        f"  curl http://127.0.0.1:{port}/healthz   # the API: docs/api.md, docs/openapi.json\n"
        "  (register as the applicant: docs/api.md; the code arrives in .casetrack/mail,\n"
        "   and so do change notifications: docs/notifications.md)\n"
        "  .venv/bin/casetrack webhooks deliveries            # webhooks sent to representatives\n"
        "Ctrl-C stops the broker, consumer, projector, notifier and API."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--rate", type=float, default=25.0, help="messages a second")
    args = parser.parse_args()
    return run(Settings.from_env(), args.duration, args.cases, args.rate)


if __name__ == "__main__":
    sys.exit(main())

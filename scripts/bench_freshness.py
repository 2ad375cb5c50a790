"""Freshness: how soon a published event shows in the tracker API, and reaches the reader
by email and the representative's system by webhook, with the whole pipeline running.

Starts the embedded broker (or --bootstrap-servers), a fresh schema, and as child
processes `casetrack consume`, `casetrack project`, `casetrack serve` and --notifiers
`casetrack notify` (CASETRACK_NOTIFY_GROUP_SECONDS=0), with an SMTP server and a webhook
receiver in this process. Every file is received first (published and projected before
the clock starts); --linked-share of the files then get an applicant account with a
session and one representative account (with one webhook endpoint) is linked to all of
them. Then the rest of the files' events are published at --rate events/s for
--seconds, and for every event that changes what the applicant sees on a linked file
this measures, from its publication:

(a) API: until `GET /v1/applications/{n}/history` (the applicant's session) shows it
    (events that add a history line, 1 in --api-sample; each file polled every 100 ms, without
    If-None-Match: the history's ETag is built from case_status's last_updated, which a separate
    transaction moves first, so a conditional poll between the two could be told
    "not modified" until the next change);
(b) email: until the SMTP server receives the message that holds it;
(c) webhook: until the receiver gets its delivery (application number and version).

Baseline, in the same run: the notifiers are stopped (SIGTERM) and --baseline-seconds more
of events are published at the same rate; API visibility is measured again. The ratio
is the API p99 with the notifiers sending over the API p99 without them (what
notifications cost the tracker's freshness). Targets: API p99 < 1 s, email and webhook
p99 < 5 s. The last line is JSON.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import httpx
import psycopg
from aiosmtpd.controller import Controller
from children import CASETRACK, ROOT, child_env
from kafka import KafkaProducer
from psycopg.sql import SQL, Identifier

from adapters import bootstrap, logs
from adapters.kafka_broker import EmbeddedBroker, free_port
from adapters.postgres.event_store import EVENTS_TABLE
from adapters.postgres.schema import drop_schema, init_schema
from adapters.settings import Settings
from consumers.contract import parse_event
from domain import accounts, webhook_signature
from domain.application_number import case_id
from domain.case import Case, handle
from domain.rules import RuleViolation
from projections import case_status, timeline
from projections.notify_changes import visible_change
from simulation import casegen, kafka_feed

ROLE = "principal_applicant"


@dataclass
class Expected:
    """One event that changes what the applicant sees on a linked file."""

    number: str
    version: int
    history_len: int | None  # the applicant's history length once it shows (None: no line)
    published: float = 0.0
    api: float | None = None
    email: float | None = None
    webhook: float | None = None


@dataclass
class Plan:
    received: list[str]
    timed: list[str]  # in publishing order
    expected: dict[int, list[Expected]] = field(default_factory=dict)  # line index -> events


def plan(lines: list[str], linked: set[str]) -> Plan:
    """Split the feed, and fold it offline to know, per line, what the applicant will see."""
    received = [line for line in lines if '"application.received"' in line]
    timed = [line for line in lines if '"application.received"' not in line]
    result = Plan(received, timed)
    cases: dict[str, Case] = {}
    views: dict[str, dict[str, Any]] = {}
    history: dict[str, int] = defaultdict(int)
    for index, raw in enumerate([*received, *timed]):
        command = parse_event(raw.encode())
        number = command.application_number
        before_case = cases.get(number)
        try:
            case, _ = handle(before_case, command)
        except RuleViolation:
            continue
        cases[number] = case
        for collected in case.collect_events():
            event = cast(Case.Event, collected)
            before = views.get(number)
            after = case_status.evolve(before, event)
            views[number] = after
            shown = timeline.is_shown(event, ROLE)
            history[number] += shown
            if number not in linked or index < len(received):
                continue
            if visible_change(before, after, event, ROLE) is not None:
                result.expected.setdefault(index - len(received), []).append(
                    Expected(number, event.originator_version, history[number] if shown else None)
                )
    return result


# ---------------------------------------------------------------- receivers


class Arrivals:
    def __init__(self, expected: list[Expected]) -> None:
        self.lock = threading.Lock()
        self.by_number: dict[str, list[Expected]] = defaultdict(list)
        self.by_version: dict[tuple[str, int], Expected] = {}
        for e in expected:
            self.by_number[e.number].append(e)
            self.by_version[(e.number, e.version)] = e
        self.email_cursor: dict[str, int] = defaultdict(int)
        self.unmatched = 0
        # What arrived, as it arrived: matched to the events afterwards (``settle``), so
        # the receivers answer at once and never slow the notifier they time.
        self.raw: list[tuple[str, bytes, float]] = []

    def arrived(self, kind: str, content: bytes) -> None:
        at = time.time()
        with self.lock:
            self.raw.append((kind, content, at))

    def settle(self) -> None:
        with self.lock:
            raw, self.raw = self.raw, []
        for kind, content, at in sorted(raw, key=lambda r: r[2]):
            (self.email if kind == "email" else self.webhook)(content, at)

    def email(self, raw: bytes, at: float) -> None:
        """Each change is one "- " line under its file's heading, in version order (the
        applicant's messages: the representative's hold every file's)."""
        message = message_from_bytes(raw, policy=policy.default)
        if not str(message["To"]).startswith("applicant"):
            return
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        number = None
        with self.lock:
            for line in text.splitlines():
                heading = re.match(r"^(?:Application|Demande) ([A-Z][0-9]{9})$", line)
                if heading:
                    number = heading.group(1)
                elif line.startswith("- ") and number is not None:
                    cursor = self.email_cursor[number]
                    events = self.by_number.get(number, [])
                    if cursor < len(events):
                        if events[cursor].email is None:
                            events[cursor].email = at
                        self.email_cursor[number] = cursor + 1
                    else:
                        self.unmatched += 1

    def webhook(self, body: bytes, at: float) -> None:
        data = json.loads(body)["data"]
        with self.lock:
            found = self.by_version.get((data["application_number"], data["change"]["version"]))
            if found is None:
                self.unmatched += 1
            elif found.webhook is None:
                found.webhook = at


class _Mail:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        self.arrivals.arrived("email", content if isinstance(content, bytes) else content.encode())
        return "250 OK"


def webhook_receiver(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as receivers usually do

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            arrivals.arrived("webhook", body)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------- accounts


def link_accounts(url: str, schema: str, numbers: list[str], hook_url: str) -> dict[str, str]:
    """An applicant account with a live session per file, and one representative (with a
    webhook endpoint) on all of them. Returns number -> session token."""
    s = Identifier(schema)
    now = datetime.now(UTC)
    tokens = {}
    with psycopg.connect(url) as conn, conn.cursor() as curs:
        curs.execute(
            SQL(
                "INSERT INTO {}.accounts (login, kind, email, language, password_hash,"
                " created_at, password_changed_at) VALUES (%s, 'representative', %s, 'en',"
                " '!', %s, %s) RETURNING account_id"
            ).format(s),
            ("rep@bench.example", "rep@bench.example", now, now),
        )
        rep = curs.fetchone()[0]  # type: ignore[index]
        curs.execute(
            SQL(
                "INSERT INTO {}.webhook_endpoints (account_id, url, events, secret, created_at)"
                " VALUES (%s, %s, %s, %s, %s)"
            ).format(s),
            (rep, hook_url, ["application.status_changed", "application.updated"],
             webhook_signature.new_secret(), now),
        )  # fmt: skip
        for i, number in enumerate(numbers):
            login = f"{9_000_000_000 + i}"
            curs.execute(
                SQL(
                    "INSERT INTO {}.accounts (login, kind, email, language, password_hash,"
                    " created_at, password_changed_at) VALUES (%s, 'client', %s, 'en', '!',"
                    " %s, %s) RETURNING account_id"
                ).format(s),
                (login, f"applicant{i}@bench.example", now, now),
            )
            account = curs.fetchone()[0]  # type: ignore[index]
            for who, role in ((account, ROLE), (rep, "representative")):
                curs.execute(
                    SQL(
                        "INSERT INTO {}.account_links (account_id, application_number, case_id,"
                        " role, linked_at) VALUES (%s, %s, %s, %s, %s)"
                    ).format(s),
                    (who, number, case_id(number), role, now),
                )
            token = accounts.new_token(accounts.SESSION_PREFIX)
            curs.execute(
                SQL(
                    "INSERT INTO {}.sessions (token_hash, account_id, created_at, expires_at)"
                    " VALUES (%s, %s, %s, %s)"
                ).format(s),
                (accounts.token_digest(token), account, now, now + timedelta(hours=8)),
            )
            tokens[number] = token
        curs.execute(SQL("ANALYZE {}.account_links").format(s))
        curs.execute(SQL("ANALYZE {}.sessions").format(s))
    return tokens


# ---------------------------------------------------------------- measuring


class ApiPoller:
    """Polls the files of measured events until their history shows them, on an event loop
    of its own (a thread): one poller per file, every 100 ms, however many of its events
    wait (the pollers share the machine with what they time)."""

    def __init__(self, port: int, tokens: dict[str, str]) -> None:
        self.port = port
        self.tokens = tokens
        self.waiting: dict[str, list[Expected]] = defaultdict(list)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = asyncio.run_coroutine_threadsafe(self._client(), self.loop).result()
        self.pending: set[Any] = set()

    async def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", limits=limits)

    def watch(self, e: Expected) -> None:
        self.loop.call_soon_threadsafe(self._watch, e)

    def _watch(self, e: Expected) -> None:
        waiting = self.waiting[e.number]
        waiting.append(e)
        if len(waiting) == 1:  # no poller for this file yet
            self.pending.add(asyncio.ensure_future(self._poll(e.number)))

    async def _poll(self, number: str, deadline: float = 60.0) -> None:
        headers = {"authorization": f"Bearer {self.tokens[number]}"}
        path = f"/v1/applications/{number}/history"
        waiting = self.waiting[number]
        give_up = time.monotonic() + deadline
        while waiting and time.monotonic() < give_up:
            with suppress(httpx.HTTPError):
                answer = await self.client.get(path, headers=headers)
                shown = len(answer.json()["history"]) if answer.status_code == 200 else 0
                now = time.time()
                for e in [e for e in waiting if (e.history_len or 0) <= shown]:
                    e.api = now
                    waiting.remove(e)
            if waiting:
                await asyncio.sleep(0.1)
        waiting.clear()

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(self.waiting.values()):
            time.sleep(0.1)

    def close(self) -> None:
        def cancel() -> None:
            for task in self.pending:
                task.cancel()

        self.loop.call_soon_threadsafe(cancel)
        time.sleep(0.2)
        asyncio.run_coroutine_threadsafe(self.client.aclose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def publish(
    servers: str,
    topic: str,
    lines: list[str],
    first: int,
    rate: float,
    p: Plan,
    api: ApiPoller,
    api_sample: int,
) -> None:
    """Publish ``lines`` (timed lines from index ``first``) at ``rate``, stamping each
    measured event with its publication time and starting its API poll."""
    producer = KafkaProducer(bootstrap_servers=servers, acks=1, linger_ms=0)
    started = time.monotonic()
    sampled = 0
    try:
        for sent, line in enumerate(lines):
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
            at = time.time()
            producer.send(topic, key=kafka_feed.key_for(line), value=line.encode())
            for e in p.expected.get(first + sent, ()):
                e.published = at
                if e.history_len is not None:
                    sampled += 1
                    if sampled % api_sample == 0:
                        api.watch(e)
        producer.flush()
    finally:
        producer.close()


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": math.nan, "p99": math.nan, "max": math.nan}
    ordered = sorted(values)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {"n": len(ordered), "p50": pct(0.5), "p99": pct(0.99), "max": ordered[-1]}


def line_for(name: str, s: dict[str, float], missing: int, target: float | None) -> str:
    verdict = ""
    if target is not None and s["n"]:
        verdict = f"  target p99 < {target:.0f} ms: {'met' if s['p99'] < target else 'MISSED'}"
    return (
        f"  {name:<8} n={s['n']:>6}  p50 {s['p50']:8.0f} ms  p99 {s['p99']:8.0f} ms"
        f"  max {s['max']:8.0f} ms  missing {missing}{verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=500.0, help="events a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    parser.add_argument("--linked-share", type=float, default=0.2)
    parser.add_argument(
        "--notifiers", type=int, default=1, help="processes (2 threads per channel each)"
    )
    parser.add_argument(
        "--api-sample", type=int, default=5,
        help="poll 1 in N of the events (the pollers share the machine with what they time)",
    )  # fmt: skip
    parser.add_argument("--bootstrap-servers", help="a running broker (default: embedded)")
    args = parser.parse_args()
    logs.configure("error")
    settings = Settings.from_env()
    url = bootstrap.database_url(settings)
    schema = f"bench_{secrets.token_hex(4)}"
    needed = int(args.rate * (args.seconds + args.baseline_seconds))
    cases = math.ceil(needed / 11.0)
    lines = casegen.generate(cases, seed=14)
    received = [line for line in lines if '"application.received"' in line]
    numbers = [json.loads(line)["application_number"] for line in received]
    linked = set(numbers[:: max(1, round(1 / args.linked_share))])
    p = plan(lines, linked)
    main_count = int(args.rate * args.seconds)
    base_count = int(args.rate * args.baseline_seconds)
    if len(p.timed) < main_count + base_count:
        raise SystemExit("not enough generated events: raise the case count")
    init_schema(url, schema)
    broker = None if args.bootstrap_servers else EmbeddedBroker().start()
    servers = broker.bootstrap_servers if broker is not None else args.bootstrap_servers
    topic = f"fresh-{secrets.token_hex(3)}"
    main_expected = [e for i in range(main_count) for e in p.expected.get(i, ())]
    base_expected = [e for i in range(main_count, main_count + base_count)
                     for e in p.expected.get(i, ())]  # fmt: skip
    arrivals = Arrivals(main_expected + base_expected)
    mail_port, api_port = free_port(), free_port()
    sink = Controller(_Mail(arrivals), hostname="127.0.0.1", port=mail_port)
    sink.start()
    hooks = webhook_receiver(arrivals)
    env = {
        **child_env(url, schema),
        "CASETRACK_SMTP_HOST": "127.0.0.1",
        "CASETRACK_SMTP_PORT": str(mail_port),
        "CASETRACK_NOTIFY_GROUP_SECONDS": "0",
        "CASETRACK_WEBHOOK_ALLOW_PRIVATE": "1",
        "CASETRACK_CHECKPOINT_SECONDS": "0",
    }

    def child(*command: str) -> subprocess.Popen[bytes]:
        out = subprocess.DEVNULL
        return subprocess.Popen([*CASETRACK, *command], env=env, cwd=ROOT, stdout=out, stderr=out)

    pipeline = [
        child("consume", "--bootstrap-servers", servers, "--topic", topic,
              "--group", f"fresh-{schema}"),
        child("project", "--poll-interval", "0.5"),
        child("serve", "--port", str(api_port)),
    ]  # fmt: skip
    notifiers = [child("notify", "--poll-interval", "0.5") for _ in range(args.notifiers)]
    api: ApiPoller | None = None
    try:
        t0 = time.perf_counter()
        kafka_feed.publish(p.received, servers, topic)
        with psycopg.connect(url, autocommit=True) as conn:
            # Every view at the head, not only notifications': they run in lanes of their
            # own (projections/lanes.py), and a backlog would be timed as lateness.
            views = SQL("SELECT count(*) FROM {}.notify_views").format(Identifier(schema))
            behind = SQL(
                "SELECT count(*) FROM {s}.projection_positions"
                " WHERE position < (SELECT coalesce(max(notification_id), 0) FROM {s}.{t})"
            ).format(s=Identifier(schema), t=Identifier(EVENTS_TABLE))
            while (conn.execute(views).fetchone() or [0])[0] < len(p.received) or (
                conn.execute(behind).fetchone() or [1]
            )[0]:
                if any(c.poll() is not None for c in pipeline + notifiers):
                    raise RuntimeError("a pipeline process exited early")
                time.sleep(0.2)
        print(
            f"{len(p.received):,} files received and projected in"
            f" {time.perf_counter() - t0:.1f}s; {len(linked):,} of them linked to an"
            f" applicant account and a representative with a webhook endpoint"
        )
        tokens = link_accounts(url, schema, sorted(linked), hooks_url(hooks))
        while httpx.get(f"http://127.0.0.1:{api_port}/healthz").status_code != 200:
            time.sleep(0.2)
        api = ApiPoller(api_port, tokens)
        print(
            f"publishing {main_count:,} events at {args.rate:.0f}/s ({len(main_expected):,}"
            f" change what a linked file's applicant sees) with {args.notifiers} notifiers"
        )
        publish(servers, topic, p.timed[:main_count], 0, args.rate, p, api, args.api_sample)
        drain(main_expected, api, arrivals, timeout=30.0)
        main_figures = figures(main_expected, args.api_sample)

        for n in notifiers:
            n.send_signal(signal.SIGTERM)
        for n in notifiers:
            n.wait(30)
        print(f"baseline: notifiers stopped; {base_count:,} more events at {args.rate:.0f}/s")
        publish(
            servers, topic, p.timed[main_count : main_count + base_count], main_count,
            args.rate, p, api, args.api_sample,
        )  # fmt: skip
        api.wait(30.0)
        base_figures = figures(base_expected, args.api_sample)
    finally:
        for c in pipeline + notifiers:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
        for c in pipeline + notifiers:
            try:
                c.wait(30)
            except subprocess.TimeoutExpired:
                c.kill()
        if api is not None:
            api.close()
        sink.stop()
        hooks.shutdown()
        if broker is not None:
            broker.stop()
        retried = retries(url, schema)
        drop_schema(url, schema)

    print("freshness from publication, with consumer, projector, API and notifiers running:")
    targets = {"api": 1000.0, "email": 5000.0, "webhook": 5000.0}
    for name in ("api", "email", "webhook"):
        s, missing = main_figures[name]
        print(line_for(name, s, missing, targets[name]))
    bs, bmissing = base_figures["api"]
    print("baseline (the same pipeline, notifiers stopped):")
    print(line_for("api", bs, bmissing, targets["api"]))
    ratio = main_figures["api"][0]["p99"] / bs["p99"] if bs["n"] else math.nan
    print(f"ratio: API p99 with notifiers / without = {ratio:.2f}x")
    print(
        "  deliveries tried more than once (a timeout or refusal under load):"
        f" email {retried.get('email', 0)}, webhook {retried.get('webhook', 0)}"
    )
    if arrivals.unmatched:
        print(f"  ({arrivals.unmatched} deliveries matched no expected event)")
    result: dict[str, Any] = {
        "benchmark": "freshness",
        "events": main_count,
        "rate": args.rate,
        "measured_changes": len(main_expected),
    }
    for name in ("api", "email", "webhook"):
        s, missing = main_figures[name]
        result |= {
            f"{name}_p50_ms": _ms(s["p50"]), f"{name}_p99_ms": _ms(s["p99"]),
            f"{name}_max_ms": _ms(s["max"]), f"{name}_n": s["n"], f"{name}_missing": missing,
        }  # fmt: skip
    result |= {
        "baseline_api_p99_ms": round(bs["p99"]) if bs["n"] else None,
        "ratio": round(ratio, 2) if bs["n"] else None,
        "targets_met": all(
            main_figures[n][0]["n"] and main_figures[n][0]["p99"] < targets[n] and
            not main_figures[n][1] for n in targets
        ),
    }  # fmt: skip
    print(json.dumps(result))
    return 0


def _ms(value: float) -> int | None:
    """A figure for the JSON line (None when nothing was measured)."""
    return None if math.isnan(value) else round(value)


def retries(url: str, schema: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            SQL(
                "SELECT channel, count(*) FROM {}.notify_outbox WHERE attempts > 1 GROUP BY channel"
            ).format(Identifier(schema))
        ).fetchall()
    return {str(channel): int(n) for channel, n in found}


def hooks_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/hooks"


def drain(expected: list[Expected], api: ApiPoller, arrivals: Arrivals, timeout: float) -> None:
    """Wait (bounded) until every measured event arrived everywhere."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        arrivals.settle()
        if all(e.email is not None and e.webhook is not None for e in expected):
            break
        time.sleep(0.2)
    api.wait(max(1.0, deadline - time.monotonic()))


def figures(expected: list[Expected], api_sample: int) -> dict[str, tuple[dict[str, float], int]]:
    found: dict[str, tuple[dict[str, float], int]] = {}
    for name in ("api", "email", "webhook"):
        pool = [e for e in expected if name != "api" or e.history_len is not None]
        if name == "api":
            pool = pool[api_sample - 1 :: api_sample]
        times = [(getattr(e, name) - e.published) * 1000 for e in pool
                 if getattr(e, name) is not None]  # fmt: skip
        found[name] = (stats(times), len(pool) - len(times))
    return found


if __name__ == "__main__":
    sys.exit(main())

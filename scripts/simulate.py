"""Ten years of casetrack's load, replayed in compressed time through the whole pipeline.

The load (issue 15): about --cases-per-year family-class applications a year (10^5),
each a realistic flow from simulation.casegen (about 14 events a case, so 1.4 M events
a year at full volume; the issue's 2-5 M a year is more than casegen's flows make), and
the tracker's signed-in status reads.

What runs: the embedded broker (or --bootstrap-servers), a fresh schema, and as child
processes TWO `casetrack consume` (one group), TWO `casetrack project` and TWO
`casetrack serve` (two ports). The cases are generated two years of intake at a time
(casegen, --seed), application numbers kept unique across slices, and each event is
published when its ``occurred_at``, compressed by --speedup, comes due: --years of
simulated time take years x 365.25 days / speedup of wall time. --scale scales the
volume (the number of cases; 1.0 is the full 10^5 a year), never the time.

Reads are not compressed: pollers (a child process of their own) read
`GET /v1/applications/{n}` with a session of an account linked to the file, spread
over both API processes, at --read-multiplier x the peak rate of real status checks:
--reads-per-year spread evenly, times --peak-factor at the busiest moment. Accounts
(60% principal applicants, 30% sponsors, 10% representatives) are linked to
--linked-share of the files as they appear. Requests are sent on a fixed schedule and
timed from when they were due (a slow server is not allowed to slow its own load).

Reported over the run (sampled every --sample-seconds from the first stored batch):
consumer lag (messages the broker acknowledged that no consumer has stored) and
projection lag (events stored that the slowest view has not applied), max and p99;
the read latency (p50, p99, max; p99 per tenth of the run) and the reads that were
not 2xx or failed; dead letters (the feed has no poison: any is an error) and
projection dead letters; each process's peak RSS (VmHWM) and CPU seconds; how long
the pipeline took to catch up after the last publication; and the size the schema's
tables (pg_total_relation_size) and the database have at the end, with a linear
extrapolation of the schema to the full volume. The last line is JSON.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL. The schema is dropped at
the end unless --keep-schema.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import math
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from children import CASETRACK, ROOT, child_env

YEAR_SECONDS = 365.25 * 86400
SLICE_YEARS = 2  # casegen receives cases over two years (casegen.INTAKE_DAYS)
EVENTS_PER_CASE = 13.8  # casegen's flows, on average (docs: bench_kafka_ingest)
ROLES = ("principal_applicant", "sponsor", "representative")

# ---------------------------------------------------------------- the feed


def _instant(line: str) -> tuple[float, str]:
    event = json.loads(line)
    return datetime.fromisoformat(event["occurred_at"]).timestamp(), event["application_number"]


def timeline(
    years: float, cases_per_year: int, scale: float, seed: int, first_year: int
) -> Iterator[tuple[float, str]]:
    """(instant, line) in instant order over ``years`` from 1 January ``first_year``:
    two-year slices of casegen's flows, each holding 2 x cases_per_year x scale cases,
    merged where one slice's tail overlaps the next; events after the end are dropped
    (cases still open then stay open). A number a slice repeats is dropped with its events."""
    from simulation import casegen

    begin = datetime(first_year, 1, 1).astimezone().timestamp()
    end = begin + years * YEAR_SECONDS
    seen: set[str] = set()
    carry: list[tuple[float, str]] = []
    slices = max(1, math.ceil(years / SLICE_YEARS))
    per_slice = max(1, round(SLICE_YEARS * cases_per_year * scale))
    for index in range(slices):
        start = date(first_year + SLICE_YEARS * index, 1, 1)
        lines = casegen.generate(per_slice, seed=seed + index, duplicate_share=0.01, start=start)
        stamped: list[tuple[float, str]] = []
        fresh: set[str] = set()
        for line in lines:
            at, number = _instant(line)
            if at >= end or (number in seen and number not in fresh):
                continue
            fresh.add(number)
            stamped.append((at, line))
        seen |= fresh
        stamped.sort(key=lambda pair: pair[0])
        following = datetime(first_year + SLICE_YEARS * (index + 1), 1, 1).astimezone().timestamp()
        carry = list(heapq.merge(carry, stamped, key=lambda pair: pair[0]))
        cut = next((i for i, (at, _) in enumerate(carry) if at >= following), len(carry))
        if index == slices - 1:
            cut = len(carry)
        yield from carry[:cut]
        carry = carry[cut:]


class Feed:
    """The timeline generated on a thread of its own, up to 160,000 lines ahead of the
    publisher, so that building the next slice does not hold publication up."""

    def __init__(self, source: Iterator[tuple[float, str]]) -> None:
        import queue

        self.queue: queue.Queue[list[tuple[float, str]] | None] = queue.Queue(maxsize=32)
        self.source = source
        threading.Thread(target=self._fill, daemon=True).start()

    def _fill(self) -> None:
        chunk: list[tuple[float, str]] = []
        for pair in self.source:
            chunk.append(pair)
            if len(chunk) >= 5000:
                self.queue.put(chunk)
                chunk = []
        self.queue.put(chunk)
        self.queue.put(None)

    def __iter__(self) -> Iterator[tuple[float, str]]:
        while (chunk := self.queue.get()) is not None:
            yield from chunk


@dataclass
class Published:
    """What the broker acknowledged, per partition (the producer's callbacks)."""

    ends: dict[int, int] = field(default_factory=dict)
    count: int = 0
    failed: int = 0

    def record(self, metadata: Any) -> None:
        self.ends[metadata.partition] = max(
            self.ends.get(metadata.partition, 0), metadata.offset + 1
        )

    def fail(self, _: Exception) -> None:
        self.failed += 1


def publish(
    feed: Feed, servers: str, topic: str, speedup: float, begin: float, out: Published
) -> float:
    """Publish each line when its instant, compressed, comes due; the wall seconds taken."""
    from kafka import KafkaProducer

    from simulation import kafka_feed

    producer = KafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5)
    started = time.monotonic()
    try:
        for at, line in feed:
            ahead = (at - begin) / speedup - (time.monotonic() - started)
            if ahead > 0.002:
                time.sleep(ahead)
            future = producer.send(topic, key=kafka_feed.key_for(line), value=line.encode())
            future.add_callback(out.record).add_errback(out.fail)
            out.count += 1
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return time.monotonic() - started


# ---------------------------------------------------------------- pollers (child process)


def _link(url: str, schema: str, share: float, linked: int) -> list[tuple[str, str]]:
    """Accounts with live sessions linked to new files until ``share`` of them are:
    (token, number) pairs of the new ones."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    from domain.accounts import SESSION_PREFIX, new_token, token_digest

    s = Identifier(schema)
    pairs: list[tuple[str, str]] = []
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        row = conn.execute(SQL("SELECT count(*) FROM {}.case_status").format(s)).fetchone()
        want = math.ceil((row[0] if row else 0) * share) - linked
        if want <= 0:
            return pairs
        files = conn.execute(
            SQL(
                "SELECT application_number, case_id FROM {s}.case_status c WHERE NOT EXISTS"
                " (SELECT 1 FROM {s}.account_links l WHERE l.case_id = c.case_id)"
                " ORDER BY md5(application_number) LIMIT %s"
            ).format(s=s),
            (want,),
        ).fetchall()
        for offset, (number, case) in enumerate(files):
            index = linked + offset
            found = conn.execute(
                SQL(
                    "INSERT INTO {}.accounts (login, kind, email, language, password_hash,"
                    " created_at, password_changed_at) VALUES (%s, 'client', %s, %s, 'x',"
                    " now(), now()) RETURNING account_id"
                ).format(s),
                (f"sim-{index}", f"sim-{index}@example.invalid", "fr" if index % 4 else "en"),
            ).fetchone()
            assert found is not None
            role = ROLES[0 if index % 10 < 6 else 1 if index % 10 < 9 else 2]
            conn.execute(
                SQL(
                    "INSERT INTO {}.account_links (account_id, application_number, case_id, role,"
                    " linked_at) VALUES (%s, %s, %s, %s, now())"
                ).format(s),
                (found[0], number, case, role),
            )
            token = new_token(SESSION_PREFIX)
            conn.execute(
                SQL(
                    "INSERT INTO {}.sessions (token_hash, account_id, created_at, expires_at)"
                    " VALUES (%s, %s, now(), now() + interval '12 hours')"
                ).format(s),
                (token_digest(token), found[0]),
            )
            pairs.append((token, number))
    return pairs


class Connections:
    """Kept-alive HTTP/1.1 connections to one API process, opened as needed up to ``size``:
    plain asyncio streams (an HTTP client library would cost the pollers more CPU than
    the reads cost the server, on the machine they share)."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]
        self.idle = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(None)

    async def get(self, path: str, token: str) -> str:
        """The answer's status code, or the error's name."""
        conn = await self.idle.get()
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = conn
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            at = head.find(b"content-length:")
            if at >= 0:
                await reader.readexactly(int(head[at + 15 : head.index(b"\r\n", at)]))
            if b"connection: close" in head:
                writer.close()
                conn = None
            return head[9:12].decode()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            if conn is not None:
                conn[1].close()
            conn = None
            return type(e).__name__
        finally:
            self.idle.put_nowait(conn)

    async def close(self) -> None:
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn is not None:
                conn[1].close()


async def _poll(spec: dict[str, Any]) -> dict[str, Any]:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    pairs: list[tuple[str, str]] = []
    apis = [Connections(port, spec["connections"]) for port in spec["ports"]]
    samples: list[tuple[float, float]] = []  # (due, seconds)
    statuses: dict[str, int] = {}
    in_flight: set[asyncio.Task[None]] = set()
    rng = random.Random(spec["seed"])
    link_failures: dict[str, int] = {}  # the simulator's own set-up, not a read

    def tally(status: str) -> None:
        statuses[status] = statuses.get(status, 0) + 1

    async def link() -> None:
        while not stop.is_set():
            try:
                pairs.extend(
                    await asyncio.to_thread(
                        _link, spec["url"], spec["schema"], spec["share"], len(pairs)
                    )
                )
            except Exception as e:  # the database under load: try again next round
                kind = getattr(e, "sqlstate", None) or type(e).__name__
                link_failures[kind] = link_failures.get(kind, 0) + 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), spec["link_seconds"])

    async def read(api: Connections, token: str, number: str, due: float) -> None:
        status = await api.get(f"/v1/applications/{number}", token)
        samples.append((due, time.monotonic() - due))
        tally(status)

    linker = asyncio.create_task(link())
    started = time.monotonic()
    sent = waiting = 0
    interval = 1.0 / spec["rate"]
    while not stop.is_set():
        due = started + sent * interval
        wait = due - time.monotonic()
        if wait > 0:
            try:
                await asyncio.wait_for(stop.wait(), wait)
                break
            except TimeoutError:
                pass
        sent += 1
        if not pairs:
            waiting += 1  # no file has an account yet
            continue
        if len(in_flight) >= spec["max_in_flight"]:
            tally("dropped")
            continue
        token, number = pairs[rng.randrange(len(pairs))]
        task = asyncio.create_task(read(apis[sent % len(apis)], token, number, due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    linker.cancel()
    if in_flight:
        await asyncio.wait(in_flight, timeout=30)
    for api in apis:
        await api.close()
    return {
        "latencies": [round(s, 5) for _, s in samples],
        "due": [round(d - started, 3) for d, _ in samples],
        "statuses": statuses,
        "link_failures": link_failures,
        "accounts": len(pairs),
        "before_first_file": waiting,
    }


def pollers_main() -> int:
    spec = json.loads(sys.stdin.readline())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_poll(spec))))
    return 0


# ---------------------------------------------------------------- measuring


class Progress:
    """Stored offsets, the log's head and the slowest view's position: one query."""

    def __init__(self, url: str, schema: str, group: str, topic: str) -> None:
        import psycopg
        from psycopg.sql import SQL, Identifier

        from adapters.postgres.event_store import EVENTS_TABLE
        from projections.registry import select

        self.conn = psycopg.connect(url, autocommit=True)
        names = [p.name for p in select(None)]
        self.params = (group, topic, names, names)
        self.query = SQL(
            "SELECT (SELECT coalesce(sum(next_offset), 0) FROM {s}.consumer_offsets"
            "  WHERE group_id = %s AND topic = %s),"
            " (SELECT coalesce(max(notification_id), 0) FROM {s}.{events}),"
            " (SELECT CASE WHEN count(*) = cardinality(%s::text[]) THEN min(position) END"
            "  FROM {s}.projection_positions WHERE name = ANY(%s))"
        ).format(s=Identifier(schema), events=Identifier(EVENTS_TABLE))

    def read(self) -> tuple[int, int, int]:
        row = self.conn.execute(self.query, self.params).fetchone()
        assert row is not None
        stored, head, projected = row
        return int(stored), int(head), int(projected or 0)

    def close(self) -> None:
        self.conn.close()


@dataclass
class Lags:
    consumer: list[int] = field(default_factory=list)
    projection: list[int] = field(default_factory=list)

    def by_tenth(self, values: list[int]) -> list[int]:
        """The largest of each tenth of the samples: how a lag moved over the run."""
        size = max(1, math.ceil(len(values) / 10))
        return [max(values[i : i + size]) for i in range(0, len(values), size)]


def sample(progress: Progress, published: Published, lags: Lags) -> tuple[int, int]:
    """One sample of both lags, once anything is stored; (consumer lag, projection lag)."""
    stored, head, projected = progress.read()
    consumer = max(0, sum(list(published.ends.values())) - stored)
    projection = max(0, head - projected)
    if stored:
        lags.consumer.append(consumer)
        lags.projection.append(projection)
    return consumer, projection


def proc_figures(pid: int) -> tuple[float, float]:
    """A process's peak RSS (VmHWM, MB) and CPU seconds (user + system) so far."""
    import os

    hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return hwm, (int(fields[11]) + int(fields[12])) / ticks


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def sizes(url: str, schema: str) -> tuple[int, int, list[tuple[str, int]]]:
    """The schema's tables (with indexes and TOAST), the database, and the largest tables."""
    import psycopg

    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm')"
            " ORDER BY 2 DESC",
            (schema,),
        ).fetchall()
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    total = sum(int(size) for _, size in tables)
    return total, int(row[0]) if row else 0, [(str(n), int(s)) for n, s in tables]


def count(url: str, schema: str, table: str) -> int:
    import psycopg
    from psycopg.sql import SQL, Identifier

    with psycopg.connect(url) as conn:
        row = conn.execute(
            SQL("SELECT count(*) FROM {}.{}").format(Identifier(schema), Identifier(table))
        ).fetchone()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------- the run


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument(
        "--speedup", type=float, default=100_000.0,
        help="simulated seconds per wall second (default 100,000: ten years in 53 minutes)",
    )  # fmt: skip
    parser.add_argument(
        "--scale", type=float, default=1.0,
        help="share of the full volume (1.0: --cases-per-year cases a year)",
    )  # fmt: skip
    parser.add_argument("--cases-per-year", type=int, default=100_000)
    parser.add_argument("--reads-per-year", type=float, default=10_000_000.0)
    parser.add_argument(
        "--peak-factor", type=float, default=20.0, help="peak read rate over the average"
    )
    parser.add_argument("--read-multiplier", type=float, default=10.0, help="x the peak")
    parser.add_argument("--linked-share", type=float, default=0.1)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--sample-seconds", type=float, default=1.0)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--session-timeout-ms", type=int, default=10_000)
    parser.add_argument("--max-poll-interval-ms", type=int, default=30_000)
    parser.add_argument("--first-year", type=int, default=2016)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-schema", action="store_true")
    parser.add_argument("--bootstrap-servers", help="a running broker (default: embedded)")
    parser.add_argument("--poll", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("years", "speedup", "scale", "cases_per_year", "read_multiplier"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main() -> int:
    args = arguments()
    if args.poll:
        return pollers_main()
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from adapters import bootstrap, logs
    from adapters.kafka_broker import EmbeddedBroker, free_port
    from adapters.postgres.event_store import EVENTS_TABLE
    from adapters.postgres.schema import drop_schema, init_schema
    from adapters.settings import Settings

    logs.configure("error")
    url = bootstrap.database_url(Settings.from_env())
    schema = f"sim_{secrets.token_hex(4)}"
    cases = round(args.years * args.cases_per_year * args.scale)
    wall = args.years * YEAR_SECONDS / args.speedup
    read_rate = args.reads_per_year / YEAR_SECONDS * args.peak_factor * args.read_multiplier
    print(
        f"replaying {args.years:g} years ({cases:,} cases, about"
        f" {cases * EVENTS_PER_CASE:,.0f} events: {args.scale:g} of {args.cases_per_year:,} cases"
        f" a year) at {args.speedup:,.0f}x: {wall:,.0f} s of publishing, about"
        f" {cases * EVENTS_PER_CASE / wall:,.0f} events/s on average; reads at"
        f" {read_rate:,.1f}/s ({args.reads_per_year:,.0f} a year, peak x{args.peak_factor:g},"
        f" x{args.read_multiplier:g})",
        flush=True,
    )
    begin = datetime(args.first_year, 1, 1).astimezone().timestamp()
    feed = Feed(timeline(args.years, args.cases_per_year, args.scale, args.seed, args.first_year))
    init_schema(url, schema)
    empty_bytes = sizes(url, schema)[0]  # what the schema holds before any event
    broker = None if args.bootstrap_servers else EmbeddedBroker().start()
    servers = broker.bootstrap_servers if broker is not None else args.bootstrap_servers
    topic, group = f"sim-{secrets.token_hex(3)}", f"sim-{schema}"
    admin = KafkaAdminClient(bootstrap_servers=servers)
    try:
        admin.create_topics([NewTopic(topic, args.partitions, 1)])
    finally:
        admin.close()
    env = child_env(url, schema)
    ports = [free_port(), free_port()]

    def child(*command: str) -> subprocess.Popen[bytes]:
        quiet = subprocess.DEVNULL
        return subprocess.Popen(
            [*CASETRACK, *command], env=env, cwd=ROOT, stdout=quiet, stderr=subprocess.PIPE
        )

    consume = ["consume", "--bootstrap-servers", servers, "--topic", topic, "--group", group]
    consume += ["--session-timeout-ms", str(args.session_timeout_ms)]
    consume += ["--max-poll-interval-ms", str(args.max_poll_interval_ms)]
    processes = {
        "consume-1": child(*consume),
        "consume-2": child(*consume),
        "project-1": child("project", "--poll-interval", "0.5"),
        "project-2": child("project", "--poll-interval", "0.5"),
        **{f"serve-{i + 1}": child("serve", "--port", str(p)) for i, p in enumerate(ports)},
    }
    pollers: subprocess.Popen[str] | None = None
    published = Published()
    lags = Lags()
    figures: dict[str, tuple[float, float]] = {}
    early: list[str] = []
    exits: dict[str, int | None] = {}
    drained_after = math.nan
    read_result: dict[str, Any] = {}
    try:
        _wait_for_api(ports, processes)
        pollers = subprocess.Popen(
            [sys.executable, __file__, "--poll"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert pollers.stdin is not None
        spec = {
            "url": url, "schema": schema, "ports": ports, "rate": read_rate,
            "share": args.linked_share, "seed": args.seed, "link_seconds": 0.5,
            "max_in_flight": 1000, "connections": 16,
        }  # fmt: skip
        pollers.stdin.write(json.dumps(spec) + "\n")
        pollers.stdin.flush()
        progress = Progress(url, schema, group, topic)
        stop_sampling = threading.Event()

        def sampler() -> None:
            while not stop_sampling.wait(args.sample_seconds):
                sample(progress, published, lags)
                early.extend(n for n, p in processes.items() if p.poll() is not None)
                if early:
                    return

        sampling = threading.Thread(target=sampler, daemon=True)
        sampling.start()
        took = publish(feed, servers, topic, args.speedup, begin, published)
        print(f"published {published.count:,} events in {took:,.0f} s", flush=True)
        finished = time.monotonic()
        while time.monotonic() - finished < args.drain_timeout and not early:
            if sample(progress, published, Lags()) == (0, 0):
                drained_after = time.monotonic() - finished
                break
            time.sleep(0.2)
        stop_sampling.set()
        sampling.join()
        progress.close()
        pollers.send_signal(signal.SIGTERM)
        out, _ = pollers.communicate(timeout=120)
        exits["pollers"] = pollers.returncode
        read_result = json.loads(out.strip().splitlines()[-1])
        pollers = None
        for name, proc in processes.items():
            if proc.poll() is None:
                figures[name] = proc_figures(proc.pid)
    finally:
        if pollers is not None:
            pollers.kill()
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in processes.items():
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            exits[name] = proc.returncode
            if proc.returncode != 0:
                tail = (err or b"").decode()[-1500:]
                print(f"{name} exited {proc.returncode}: {tail}", file=sys.stderr)
        if broker is not None:
            broker.stop()
        dead, projection_dead = (
            count(url, schema, "dead_letters"), count(url, schema, "projection_dead_letters")
        )  # fmt: skip
        schema_bytes, database_bytes, tables = sizes(url, schema)
        stored = count(url, schema, "case_status")
        events = count(url, schema, EVENTS_TABLE)
        if not args.keep_schema:
            drop_schema(url, schema)
    return report(
        args, cases=stored, events=events, published=published, lags=lags, reads=read_result,
        figures=figures, exits=exits, early=early, drained_after=drained_after, dead=dead,
        projection_dead=projection_dead, schema_bytes=schema_bytes, empty_bytes=empty_bytes,
        database_bytes=database_bytes, tables=tables, read_rate=read_rate, took=took,
    )  # fmt: skip


def _wait_for_api(ports: list[int], processes: dict[str, subprocess.Popen[bytes]]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    for port in ports:
        while True:
            if any(p.poll() is not None for p in processes.values()):
                raise SystemExit("a pipeline process exited on start")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("casetrack serve did not start")
            time.sleep(0.2)


def report(args: argparse.Namespace, **r: Any) -> int:
    lags: Lags = r["lags"]
    reads = r["reads"]
    latencies_ms = [s * 1000 for s in reads.get("latencies", [])]
    due = reads.get("due", [])
    statuses: dict[str, int] = reads.get("statuses", {})
    bad_reads = sum(n for status, n in statuses.items() if not status.startswith("2"))
    span = max(due) if due else 0.0
    tenths = []
    for k in range(10):
        part = [ms for ms, d in zip(latencies_ms, due, strict=True)
                if k * span / 10 <= d < (k + 1) * span / 10 or (k == 9 and d == span)]  # fmt: skip
        tenths.append(round(pct(part, 0.99), 1) if part else None)
    events = r["events"]
    full_events = args.years * args.cases_per_year * EVENTS_PER_CASE
    per_event = (r["schema_bytes"] - r["empty_bytes"]) / events if events else math.nan
    errors = bad_reads + r["dead"] + r["projection_dead"] + r["published"].failed
    # Every process exits 0 on SIGTERM (docs/deployment.md, "SIGTERM"): anything else, -15
    # (killed by the signal) included, is a failed shutdown.
    errors += sum(1 for code in r["exits"].values() if code != 0)
    errors += len(set(r["early"]))
    mb = 1024 * 1024
    print(f"stored {events:,} events of {r['cases']:,} cases (published {r['published'].count:,};"
          f" duplicates are stored once) in {r['took']:,.0f} s of publishing")  # fmt: skip
    print(
        f"consumer lag (messages): max {max(lags.consumer, default=0):,},"
        f" p99 {pct([float(x) for x in lags.consumer], 0.99):,.0f};"
        f" projection lag (events): max {max(lags.projection, default=0):,},"
        f" p99 {pct([float(x) for x in lags.projection], 0.99):,.0f}"
        f" ({len(lags.consumer):,} samples every {args.sample_seconds:g} s);"
        f" caught up {r['drained_after']:.1f} s after the last publication; largest per tenth"
        f" of the run: consumer {lags.by_tenth(lags.consumer)},"
        f" projection {lags.by_tenth(lags.projection)}"
    )
    print(
        f"reads at {r['read_rate']:.1f}/s over both API processes: {len(latencies_ms):,}"
        f" ({reads.get('accounts', 0):,} accounts), p50 {pct(latencies_ms, 0.5):.1f} ms,"
        f" p99 {pct(latencies_ms, 0.99):.1f} ms, max {max(latencies_ms, default=math.nan):.1f} ms;"
        f" statuses {statuses}; p99 per tenth of the run (ms): {tenths}"
        + (
            f"; linking accounts failed {links} (retried)"
            if (links := reads.get("link_failures"))
            else ""
        )
    )
    print(
        f"errors: {bad_reads} reads not 2xx, {r['dead']} dead letters, {r['projection_dead']}"
        f" projection dead letters, {r['published'].failed} publications refused, exits"
        f" {r['exits']}" + (f", exited early: {sorted(set(r['early']))}" if r["early"] else "")
    )
    for name, (hwm, cpu) in r["figures"].items():
        print(f"  {name:<10} peak RSS {hwm:7.1f} MB  CPU {cpu:8.1f} s")
    per_cpu = {
        kind: round(done / cpu)
        for kind, done in (("consume", events), ("project", events), ("serve", len(latencies_ms)))
        if (cpu := sum(c for n, (_, c) in r["figures"].items() if n.startswith(kind)))
    }
    print(
        f"per CPU second (start-up and idle polling included): {per_cpu.get('consume')} events"
        f" stored, {per_cpu.get('project')} events projected (every view),"
        f" {per_cpu.get('serve')} reads served"
    )
    print(
        f"PostgreSQL: schema {r['schema_bytes'] / mb:,.1f} MB"
        f" ({r['empty_bytes'] / mb:,.1f} MB empty;"
        f" {per_event:,.0f} bytes an event beyond that),"
        f" database {r['database_bytes'] / mb:,.1f} MB (with whatever else it holds); largest: "
        + ", ".join(f"{n} {s / mb:,.1f} MB" for n, s in r["tables"][:5])
    )
    print(
        f"extrapolated (linear in events, not measured): {args.years:g} years of"
        f" {args.cases_per_year:,} cases a year ({full_events:,.0f} events):"
        f" {per_event * full_events / 1024**3:,.1f} GiB; at 5 M events a year:"
        f" {per_event * 5e6 * args.years / 1024**3:,.1f} GiB"
    )
    result = {
        "benchmark": "simulate",
        "years": args.years,
        "scale": args.scale,
        "speedup": args.speedup,
        "cases": r["cases"],
        "events": events,
        "published": r["published"].count,
        "publish_s": round(r["took"], 1),
        "consumer_lag_max": max(lags.consumer, default=0),
        "consumer_lag_p99": pct([float(x) for x in lags.consumer], 0.99),
        "projection_lag_max": max(lags.projection, default=0),
        "projection_lag_p99": pct([float(x) for x in lags.projection], 0.99),
        "consumer_lag_max_by_tenth": lags.by_tenth(lags.consumer),
        "projection_lag_max_by_tenth": lags.by_tenth(lags.projection),
        "caught_up_s": None if math.isnan(r["drained_after"]) else round(r["drained_after"], 1),
        "read_rate": round(r["read_rate"], 1),
        "reads": len(latencies_ms),
        "read_p50_ms": round(pct(latencies_ms, 0.5), 1) if latencies_ms else None,
        "read_p99_ms": round(pct(latencies_ms, 0.99), 1) if latencies_ms else None,
        "read_p99_ms_by_tenth": tenths,
        "reads_not_2xx": bad_reads,
        "dead_letters": r["dead"],
        "projection_dead_letters": r["projection_dead"],
        "errors": errors,
        "exits": r["exits"],
        "peak_rss_mb": {n: round(h, 1) for n, (h, _) in r["figures"].items()},
        "cpu_s": {n: round(c, 1) for n, (_, c) in r["figures"].items()},
        "per_cpu_second": per_cpu,
        "link_failures": reads.get("link_failures", {}),
        "schema_bytes": r["schema_bytes"],
        "database_bytes": r["database_bytes"],
        "bytes_per_event": None if math.isnan(per_event) else round(per_event),
        "extrapolated_full_gib": None
        if math.isnan(per_event)
        else round(per_event * full_events / 1024**3, 1),
    }
    print(json.dumps(result))
    return 0 if errors == 0 and not math.isnan(r["drained_after"]) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Tracker API read throughput: authenticated GET /v1/applications/{n} against the ceiling.

Fills a schema with 100,000 cases (kept between runs and reused while its
case_status has that many rows), projects them, creates accounts linked to
random files (60% principal applicants, 30% sponsors, 10% representatives)
with live sessions, and starts `casetrack serve` (one uvicorn process, access
logs on, discarded). A load generator in a separate process (asyncio + uvloop,
HTTP/1.1 keep-alive, --concurrency connections) then runs --seconds against
GET /healthz (a constant answer through the same app and middleware: the
framework's ceiling) and --seconds against the authenticated reads, each after
a short warm-up. Prints req/s, p50 and p99 for both; the last line is JSON:
{"rps", "p50_ms", "p99_ms", "ceiling_rps", "ratio"}.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import subprocess
import sys
import time
from typing import Any, cast

from children import CASETRACK, ROOT, child_env

# ---------------------------------------------------------------- load generator (child)


class _Connection(asyncio.Protocol):
    """One keep-alive connection with one request in flight: the next request goes out as
    soon as the last byte of the answer arrives; its latency runs from the write to that
    byte. A protocol rather than streams: the generator shares the cores with the server,
    so its own cost per request is kept small."""

    def __init__(self, requests: list[bytes], deadline: float, warm_until: float) -> None:
        self.requests = requests
        self.index = random.randrange(len(requests))
        self.deadline = deadline
        self.warm_until = warm_until
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {-1: 0}  # -1: every answer, the warm-up's too
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.status = 0
        self.left = -1  # body bytes still to come; -1 while reading the head
        self.started = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.started = time.perf_counter()
        if self.started >= self.deadline:
            self.transport.close()
            return
        self.transport.write(self.requests[self.index % len(self.requests)])
        self.index += 1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if self.left < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[: end + 2]).lower()  # each header line with its CRLF
            self.status = int(head[9:12])
            at = head.find(b"content-length:")
            self.left = int(head[at + 15 : head.index(b"\r\n", at)]) if at >= 0 else 0
            del buffer[: end + 4]
        if len(buffer) < self.left:
            return
        del buffer[: self.left]
        self.left = -1
        self.statuses[-1] += 1
        if self.started >= self.warm_until:
            self.latencies.append(time.perf_counter() - self.started)
            self.statuses[self.status] = self.statuses.get(self.status, 0) + 1
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None and self.left < 0:
                self.done.set_result(None)
            else:  # cut off mid-answer: fail rather than hang or count it
                self.done.set_exception(exc or ConnectionError("connection closed mid-answer"))


async def _connection(
    host: str, port: int, requests: list[bytes], deadline: float, warm_until: float
) -> tuple[list[float], dict[int, int]]:
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(
        lambda: _Connection(requests, deadline, warm_until), host, port
    )
    await connection.done
    return connection.latencies, connection.statuses


async def _generate(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], spec["port"]
    requests = [r.encode("latin-1") for r in spec["requests"]]
    start = time.perf_counter()
    warm_until = start + spec["warmup"]
    deadline = warm_until + spec["seconds"]
    results = await asyncio.gather(
        *(
            _connection(host, port, requests, deadline, warm_until)
            for _ in range(spec["concurrency"])
        )
    )
    elapsed = time.perf_counter() - warm_until
    latencies = sorted(x for lat, _ in results for x in lat)
    statuses: dict[str, int] = {}
    for _, found in results:
        for status, count in found.items():
            statuses[str(status)] = statuses.get(str(status), 0) + count
    answered = statuses.pop("-1")

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000

    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "statuses": statuses,
        "answered": answered,  # with the warm-up's: what the CPU figures are divided by
    }


def loadgen_main() -> int:
    spec = json.loads(sys.stdin.read())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_generate(spec))))
    return 0


# ---------------------------------------------------------------- set-up (parent)


def ensure_cases(url: str, schema: str, cases: int, seed: int) -> None:
    from psycopg.sql import SQL, Identifier

    from adapters import bootstrap
    from adapters.postgres.event_store import CaseStore
    from adapters.postgres.schema import init_schema
    from adapters.settings import Settings
    from consumers.file_ingest import ingest_lines
    from projections.projector import Projector
    from projections.rebuild import rebuild
    from projections.registry import select
    from simulation import casegen

    init_schema(url, schema)
    settings = Settings.from_env()
    store = CaseStore(url, schema, bootstrap.vault(settings))
    try:
        with store.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT count(*) AS n FROM {}.case_status").format(Identifier(schema)))
            row = curs.fetchone()
            assert row is not None  # count(*) always answers one row
            have = int(row["n"])
        if store.recorder.max_notification_id():  # filled by an earlier run (numbers may
            # repeat across generated chunks, so the count can be a little under --cases)
            print(f"reusing schema {schema}: {have:,} cases", flush=True)
        else:
            print(f"filling schema {schema} with {cases:,} cases...", flush=True)
            started = time.perf_counter()
            chunk = 10_000
            for first in range(0, cases, chunk):
                lines = casegen.generate(min(chunk, cases - first), seed=seed + first)
                ingest_lines(
                    [(line + "\n").encode() for line in lines],
                    f"bench-api:{first}",
                    store,
                    batch_size=5000,
                )
            print(f"  ingested in {time.perf_counter() - started:.0f}s", flush=True)
        head = store.recorder.max_notification_id() or 0
        behind = [p for p in select(None) if head - Projector(store, p).position() > 100_000]
        if behind:  # e.g. a projection added since the schema was filled
            print(f"  rebuilding {', '.join(p.name for p in behind)}...", flush=True)
            rebuild(store, behind, opener=bootstrap.store_opener(settings))
        for projection in select(None):
            Projector(store, projection).catch_up()
    finally:
        store.close()


def make_sessions(url: str, schema: str, accounts: int) -> list[tuple[str, str]]:
    """Accounts linked to random files, each with a live session: (token, number) pairs."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    from domain.accounts import SESSION_PREFIX, new_token, token_digest

    s = Identifier(schema)
    pairs: list[tuple[str, str]] = []
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(SQL("DELETE FROM {}.accounts WHERE login LIKE 'bench-%'").format(s))
        files = conn.execute(
            SQL(
                "SELECT application_number, case_id FROM {}.case_status"
                " ORDER BY md5(application_number) LIMIT %s"
            ).format(s),
            (accounts,),
        ).fetchall()
        for index, (number, case_id) in enumerate(files):
            role = ("principal_applicant", "sponsor", "representative")[
                0 if index % 10 < 6 else 1 if index % 10 < 9 else 2
            ]
            row = conn.execute(
                SQL(
                    "INSERT INTO {}.accounts (login, kind, email, language, password_hash,"
                    " created_at, password_changed_at) VALUES (%s, 'client', %s, %s, 'x',"
                    " now(), now()) RETURNING account_id"
                ).format(s),
                (f"bench-{index}", f"bench-{index}@example.invalid", "fr" if index % 4 else "en"),
            ).fetchone()
            assert row is not None
            conn.execute(
                SQL(
                    "INSERT INTO {}.account_links (account_id, application_number, case_id, role,"
                    " linked_at) VALUES (%s, %s, %s, %s, now())"
                ).format(s),
                (row[0], number, case_id, role),
            )
            token = new_token(SESSION_PREFIX)
            conn.execute(
                SQL(
                    "INSERT INTO {}.sessions (token_hash, account_id, created_at, expires_at)"
                    " VALUES (%s, %s, now(), now() + interval '2 hours')"
                ).format(s),
                (token_digest(token), row[0]),
            )
            pairs.append((token, number))
        conn.execute(SQL("ANALYZE {}.accounts").format(s))
        conn.execute(SQL("ANALYZE {}.account_links").format(s))
        conn.execute(SQL("ANALYZE {}.sessions").format(s))
    return pairs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("casetrack serve exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("casetrack serve did not start")


def load(port: int, requests: list[str], args: argparse.Namespace) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "requests": requests,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "warmup": args.warmup,
    }
    done = subprocess.run(
        [sys.executable, __file__, "--generate-load"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=args.seconds + args.warmup + 120,
    )
    if done.returncode != 0:
        raise SystemExit(f"load generator failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--generate-load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_load:
        return loadgen_main()

    from adapters import bootstrap, logs
    from adapters.settings import Settings

    logs.configure("error")
    url = bootstrap.database_url(Settings.from_env())
    schema = f"bench_api_{args.cases}_{args.seed}"
    ensure_cases(url, schema, args.cases, args.seed)
    pairs = make_sessions(url, schema, args.accounts)

    port = free_port()
    server = subprocess.Popen(
        [*CASETRACK, "serve", "--port", str(port)],
        env=child_env(url, schema, log_level="info"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, server)
        host = f"127.0.0.1:{port}"
        ceiling = load(port, [f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n"], args)
        reads = [
            f"GET /v1/applications/{number} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
            for token, number in pairs
        ]
        target = load(port, reads, args)
    finally:
        server.terminate()
        server.wait(timeout=30)

    for name, found in (("ceiling GET /healthz", ceiling), ("GET /v1/applications/{n}", target)):
        print(
            f"{name}: {found['rps']:,.0f} req/s, p50 {found['p50_ms']:.2f} ms,"
            f" p99 {found['p99_ms']:.2f} ms ({found['requests']:,} requests,"
            f" statuses {found['statuses']})"
        )
    bad = {k: v for k, v in target["statuses"].items() if k != "200"}
    if bad:
        print(f"warning: non-200 answers during the read run: {bad}")
    ratio = target["rps"] / ceiling["rps"]
    print(f"ratio: {ratio:.3f} of the ceiling (target >= 0.5; p99 target < 50 ms)")
    print(
        json.dumps(
            {
                "rps": round(target["rps"], 1),
                "p50_ms": round(target["p50_ms"], 2),
                "p99_ms": round(target["p99_ms"], 2),
                "ceiling_rps": round(ceiling["rps"], 1),
                "ratio": round(ratio, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

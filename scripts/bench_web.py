"""Tracker web page throughput: GET /{lang}/applications/{n} for signed-in users, against
the API's JSON read of the same files in the same run.

Reuses scripts/bench_api.py's machinery: the same schema of generated cases (kept
between runs), the same accounts with live sessions (60% principal applicants, 30%
sponsors, 10% representatives), one `casetrack serve` process and the same load
generator (a separate process, HTTP/1.1 keep-alive, --concurrency connections). It
runs --seconds of GET /v1/applications/{n} (Authorization: Bearer, the baseline), then
--seconds of the HTML page with the same session in its cookie (and a CSRF cookie, as a
signed-in browser has), each in the account's language, each after a short warm-up.
Prints req/s, p50 and p99 of both and their ratio (targets: at least 0.5x the JSON
read's throughput, p99 under 50 ms), and the CPU each answer took (ms per request, the
warm-up's included): the server's, its database sessions' (found by their
application_name) and the load generator's, which share the machine's cores and are
less noisy than the timings on a busy machine. The last line is JSON: {"rps", "p50_ms",
"p99_ms", "json_rps", "json_p50_ms", "json_p99_ms", "ratio", "cpu_ms", "json_cpu_ms"}
(cpu_ms: server, database and load generator per request).

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench_api import ensure_cases, free_port, load, make_sessions, wait_until_up
from children import CASETRACK, ROOT, child_env

_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _cpu_ms(pid: int) -> float:
    """A process's user and system CPU so far, with its live children's (the workers of
    `serve --workers N`) (Linux /proc), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    own = (int(fields[11]) + int(fields[12])) * _TICK_MS  # utime, stime
    return own + sum(_cpu_ms(int(child)) for child in children)


def _sessions(url: str, name: str) -> dict[int, float]:
    """The server's database sessions (its application_name) and their CPU so far."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
    return {pid: _cpu_ms(pid) for (pid,) in pids}


def _children_ms() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (used.ru_utime + used.ru_stime) * 1000


def measured(
    port: int, requests: list[str], args: argparse.Namespace, server: int, url: str, name: str
) -> dict[str, Any]:
    """bench_api.load, with the CPU per answer of the server, its database sessions and
    the load generator (a waited-for child: RUSAGE_CHILDREN)."""
    server_ms, sessions, loader_ms = _cpu_ms(server), _sessions(url, name), _children_ms()
    found = load(port, requests, args)
    answered = max(1, found["answered"])
    database_ms = sum(ms - sessions.get(pid, 0.0) for pid, ms in _sessions(url, name).items())
    found["cpu_ms"] = {
        "server": round((_cpu_ms(server) - server_ms) / answered, 4),
        "database": round(database_ms / answered, 4),
        "load_generator": round((_children_ms() - loader_ms) / answered, 4),
    }
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="casetrack serve --workers")
    args = parser.parse_args()

    from adapters import bootstrap, logs
    from adapters.settings import Settings

    logs.configure("error")
    url = bootstrap.database_url(Settings.from_env())
    schema = f"bench_api_{args.cases}_{args.seed}"  # bench_api.py's: filled once for both
    ensure_cases(url, schema, args.cases, args.seed)
    pairs = make_sessions(url, schema, args.accounts)
    # make_sessions gives every fourth account English, the others French.
    langs = ["en" if index % 4 == 0 else "fr" for index in range(len(pairs))]

    port = free_port()
    name = f"bench-web-{port}"  # the server's sessions, for their CPU
    server_url = url + ("&" if "?" in url else "?") + f"application_name={name}"
    server = subprocess.Popen(
        [*CASETRACK, "serve", "--port", str(port), "--workers", str(args.workers)],
        env=child_env(server_url, schema, log_level="info"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, server)
        host = f"127.0.0.1:{port}"
        reads = [
            f"GET /v1/applications/{number}?lang={lang} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
            for (token, number), lang in zip(pairs, langs, strict=True)
        ]
        baseline = measured(port, reads, args, server.pid, url, name)
        # A signed-in browser also holds the CSRF cookie of the sign-in page it came from.
        pages = [
            f"GET /{lang}/applications/{number} HTTP/1.1\r\nHost: {host}\r\n"
            f"Cookie: ct_csrf={secrets.token_urlsafe(32)}; ct_session={token}\r\n\r\n"
            for (token, number), lang in zip(pairs, langs, strict=True)
        ]
        target = measured(port, pages, args, server.pid, url, name)
    finally:
        server.terminate()
        server.wait(timeout=30)

    for title, found in (
        ("JSON GET /v1/applications/{n}", baseline),
        ("page GET /{lang}/applications/{n}", target),
    ):
        cpu = found["cpu_ms"]
        print(
            f"{title}: {found['rps']:,.0f} req/s, p50 {found['p50_ms']:.2f} ms,"
            f" p99 {found['p99_ms']:.2f} ms ({found['requests']:,} requests,"
            f" statuses {found['statuses']}); CPU per request: server"
            f" {cpu['server']:.3f} ms, database {cpu['database']:.3f} ms, load generator"
            f" {cpu['load_generator']:.3f} ms"
        )
    for title, found in (("JSON", baseline), ("page", target)):
        bad = {k: v for k, v in found["statuses"].items() if k != "200"}
        if bad:
            print(f"warning: non-200 answers during the {title} run: {bad}")
    ratio = target["rps"] / baseline["rps"]
    print(
        f"ratio: {ratio:.3f} of the JSON read's throughput (target >= 0.5);"
        f" page p99 {target['p99_ms']:.2f} ms (target < 50 ms)"
    )
    print(
        json.dumps(
            {
                "rps": round(target["rps"], 1),
                "p50_ms": round(target["p50_ms"], 2),
                "p99_ms": round(target["p99_ms"], 2),
                "json_rps": round(baseline["rps"], 1),
                "json_p50_ms": round(baseline["p50_ms"], 2),
                "json_p99_ms": round(baseline["p99_ms"], 2),
                "ratio": round(ratio, 3),
                "cpu_ms": target["cpu_ms"],
                "json_cpu_ms": baseline["cpu_ms"],
                "workers": args.workers,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`casetrack audit verify`'s throughput: the whole log verified, against a plain read of the
same rows.

Fills a schema with about 1,000,000 case events (72,000 cases, as bench_projection does,
through the normal ingest path, so event_hashes is written with them; kept between runs and
reused), signs a checkpoint of it, then in this process:

- the baseline: both tables read the way the verifier reads them (EventHashes.streams: one
  snapshot, server-side binary cursors), rows counted and nothing else;
- the verification: the same read, every leaf and chain link recomputed, the Merkle tree
  rebuilt and compared with the checkpoint (IntegrityLog.verify, as `casetrack audit
  verify` runs it: stretches of the log on a worker process per core);
- the same verification in this process alone (--workers 1: one walk, verify_rows).

Reports events/s of each, the ratio of the read to the verification (what hashing costs),
the peak RSS of this process (ru_maxrss; the fill runs in a child process, so it is not
counted) and the peak RSS of this process and its workers together during the parallel
verification (sampled from /proc every 50 ms). The last line is JSON. Target: at least
100,000 events/s.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from bench_projection import ensure_events, tree_rss_mb

from adapters import bootstrap, logs
from adapters.postgres.event_store import CaseStore
from adapters.settings import Settings
from domain.integrity.checkpoint import generate_key

TARGET = 100_000
T = TypeVar("T")


def with_peak_rss(fn: Callable[[], T]) -> tuple[T, float]:
    """fn() and the peak RSS (MB) of this process and its children while it ran."""
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, tree_rss_mb(os.getpid()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        return fn(), peak
    finally:
        done.set()
        sampler.join()


def fill(url: str, schema: str, cases: int, seed: int) -> None:
    logs.configure("error")
    ensure_events(url, schema, cases, seed)


def plain_read(store: CaseStore) -> tuple[int, float]:
    """Both tables streamed as the verifier streams them, and nothing done with the rows."""
    started = time.perf_counter()
    n = 0
    with (
        store.datastore.get_connection() as conn,
        store.integrity.hashes.streams(conn) as (events, hashes),
    ):
        for _ in zip(events, hashes, strict=False):
            n += 1
    return n, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=72_000, help="about 13.8 events each")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side; best kept")
    parser.add_argument("--workers", type=int, help="verify's processes (default: per core)")
    args = parser.parse_args()
    logs.configure("error")

    url = bootstrap.database_url(Settings.from_env())
    schema = f"bench_verify_{args.cases}_{args.seed}"
    # In a child process: the fill's memory is not the verifier's.
    filler = multiprocessing.get_context("spawn").Process(
        target=fill, args=(url, schema, args.cases, args.seed)
    )
    filler.start()
    filler.join()
    if filler.exitcode != 0:
        return 1

    store = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
    try:
        signer, _ = generate_key("bench.example/log")
        checkpoint, _ = store.integrity.checkpoint(signer)
        print(f"checkpoint signed at size {checkpoint.size:,}")
        best = {"read": float("inf"), "verify": float("inf"), "walk": float("inf")}
        events = 0
        tree_peak_mb = 0.0
        cp = [(checkpoint.size, checkpoint.root)]
        for _ in range(args.rounds):
            events, elapsed = plain_read(store)
            best["read"] = min(best["read"], elapsed)
            for side, workers in (("verify", args.workers), ("walk", 1)):
                started = time.perf_counter()
                report, peak = with_peak_rss(
                    partial(store.integrity.verify, checkpoints=cp, workers=workers)
                )
                best[side] = min(best[side], time.perf_counter() - started)
                tree_peak_mb = max(tree_peak_mb, peak)
                assert report.events == events and report.checkpoints_matched == (checkpoint.size,)
    finally:
        store.close()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rates = {side: events / seconds for side, seconds in best.items()}
    print(f"plain read of both tables: {events:,} events = {rates['read']:,.0f} events/s")
    print(
        f"audit verify (leaves, chains, tree, checkpoint; a process per core):"
        f" {events:,} events in {best['verify']:.1f}s = {rates['verify']:,.0f} events/s"
        f" ({'meets' if rates['verify'] >= TARGET else 'below'} the {TARGET:,} target)"
    )
    print(
        f"the same in one process (one walk): {events:,} events in {best['walk']:.1f}s ="
        f" {rates['walk']:,.0f} events/s"
    )
    print(
        f"reading alone is {rates['read'] / rates['verify']:.2f}x as fast as verifying"
        f" ({rates['read'] / rates['walk']:.2f}x in one process); peak RSS {peak_rss_mb:.0f} MB"
        f" (this process), {tree_peak_mb:.0f} MB (with its workers, sampled)"
    )
    print(
        json.dumps(
            {
                "events": events,
                "verify_events_per_s": round(rates["verify"]),
                "one_process_events_per_s": round(rates["walk"]),
                "read_events_per_s": round(rates["read"]),
                "read_to_verify_ratio": round(rates["read"] / rates["verify"], 2),
                "peak_rss_mb": round(peak_rss_mb, 1),
                "peak_rss_with_workers_mb": round(tree_peak_mb, 1),
                "target_events_per_s": TARGET,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

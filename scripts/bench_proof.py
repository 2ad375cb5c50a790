"""Proof size and time for one case in a tree of 1,000,000 events.

Fills a schema with a synthetic log (kept between runs and reused when its size matches):
one real case (a generated file, ingested into a scratch schema to get its stored events
exactly as casetrack writes them) whose events are spread evenly through the log, and
synthetic events around them. Only what proofs read is written: event_hashes rows for every
leaf (hashed by domain.integrity.stored.hash_events, copied in by EventHashes.copy), the
real case's rows in the events table, and a signed checkpoint (which keeps merkle_nodes).

Then measures, for that case: the bundle's size (bytes as `casetrack audit export` prints
it) and hashes per inclusion proof; the time to export it (in process, and the whole
`casetrack audit export` command) and to verify it (domain.integrity.bundle, offline), with
and without a consistency proof from half the log. The baseline: the same inclusion proofs
computed in memory by merkle.inclusion_proof over all the leaves (after reading them all),
which is what the stored tiles save. The last line is JSON.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar
from uuid import UUID

import orjson
from children import CASETRACK, ROOT, child_env
from psycopg.sql import SQL, Identifier

from adapters import bootstrap, logs
from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from adapters.postgres.proof_bundles import export_bundle
from adapters.postgres.schema import drop_schema, init_schema
from adapters.settings import Settings
from consumers.file_ingest import ingest_lines
from domain.application_number import case_id
from domain.integrity import merkle
from domain.integrity.bundle import verify_bundle
from domain.integrity.checkpoint import Checkpoint, generate_key, sign_checkpoint, vkey_of
from domain.integrity.stored import StoredRow, hash_events
from simulation import casegen

T = TypeVar("T")
ORIGIN = "bench.example/case-log"
SEED = 7
CHUNK = 100_000


def real_case(url: str) -> tuple[str, list[StoredRow]]:
    """The generated file with the most events, stored as casetrack stores it."""
    lines = casegen.generate(6, seed=SEED)
    counts: dict[str, int] = {}
    for line in lines:
        number = json.loads(line)["application_number"]
        counts[number] = counts.get(number, 0) + 1
    number = max(counts, key=lambda n: counts[n])
    scratch = f"bench_proof_case_{SEED}"
    init_schema(url, scratch)
    store = CaseStore(url, scratch, bootstrap.vault(Settings.from_env()))
    try:
        ingest_lines((line.encode() for line in lines), "bench", store)
        rows = [row for row, _ in store.integrity.case_events(case_id(number))]
    finally:
        store.close()
        drop_schema(url, scratch)
    return number, rows


def fill(store: CaseStore, size: int, case_rows: list[StoredRow], skey: str) -> None:
    """A log of `size` leaves with `case_rows` spread evenly through it, and a checkpoint."""
    n = len(case_rows)
    places = {(k + 1) * size // (n + 1): row for k, row in enumerate(case_rows)}
    links: dict[UUID, bytes] = {}
    target = case_rows[0].case_id
    for lo in range(0, size, CHUNK):
        rows = []
        for i in range(lo, min(lo + CHUNK, size)):
            real = places.get(i)
            if real is not None:
                rows.append(replace(real, notification_id=i + 1))
            else:
                state = b'{"n":%d,"source":"bench"}' % i
                rows.append(StoredRow(i + 1, UUID(int=i + 1), 1, "bench:Synthetic", state))
        hashed = hash_events(rows, links, lo)
        mine = [h for h in hashed if h.case_id == target]
        if mine:
            links[target] = mine[-1].chain
        with store.datastore.transaction(commit=True) as curs:
            store.integrity.hashes.copy(curs, hashed)
        print(f"  {min(lo + CHUNK, size):,} leaves", flush=True)
    insert = SQL(
        "INSERT INTO {}.{} (notification_id, originator_id, originator_version, topic, state)"
        " VALUES (%s, %s, %s, %s, %s)"
    ).format(Identifier(store.schema), Identifier(EVENTS_TABLE))
    with store.datastore.transaction(commit=True) as curs:
        for i, row in places.items():
            curs.execute(insert, (i + 1, row.case_id, row.case_version, row.topic, row.state))
    started = time.perf_counter()
    store.integrity.checkpoint(skey)
    print(f"  checkpoint signed (tiles kept) in {time.perf_counter() - started:.1f} s")


def timed(runs: int, work: Callable[[], T]) -> tuple[float, T]:
    """The median time of `runs` calls, and the last result."""
    times = []
    result: T
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="tree size")
    parser.add_argument("--runs", type=int, default=5, help="timed runs (median)")
    parser.add_argument("--fresh", action="store_true", help="refill the schema")
    args = parser.parse_args()
    logs.configure("error")
    url = bootstrap.database_url(Settings.from_env())
    schema = f"bench_proof_{args.events}"
    key_file = ROOT / ".casetrack" / f"{schema}.key"
    number, case_rows = real_case(url)
    if args.fresh:
        drop_schema(url, schema)
    init_schema(url, schema)
    store = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
    try:
        latest = store.integrity.latest()
        if latest is None or latest.size != args.events or not key_file.exists():
            drop_schema(url, schema)
            store.close()
            init_schema(url, schema)
            store = CaseStore(url, schema, bootstrap.vault(Settings.from_env()))
            skey, _ = generate_key(ORIGIN)
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(skey)
            print(f"filling {schema}: {args.events:,} leaves, file {number}", flush=True)
            started = time.perf_counter()
            fill(store, args.events, case_rows, skey)
            print(f"  filled in {time.perf_counter() - started:.1f} s")
        else:
            print(f"reusing {schema} ({args.events:,} leaves)")
        skey = key_file.read_text()
        vkey = vkey_of(skey)
        report = measure(store, url, schema, number, vkey, skey, args.events, args.runs)
    finally:
        store.close()
    for name, value in report.items():
        print(f"{name}: {value}")
    print(json.dumps(report))
    return 0


def measure(
    store: CaseStore, url: str, schema: str, number: str, vkey: str, skey: str, size: int, runs: int
) -> dict[str, Any]:
    half = size // 2
    export_s, bundle = timed(runs, lambda: export_bundle(store.integrity, [number]))
    data = orjson.dumps(bundle) + b"\n"
    events = bundle["cases"][0]["events"]
    proof_lengths = [len(e["inclusion"]) for e in events]
    since_s, since_bundle = timed(runs, lambda: export_bundle(store.integrity, [number], half))
    since_data = orjson.dumps(since_bundle) + b"\n"
    verify_s, checked = timed(runs, lambda: verify_bundle(data, vkey, case_id_of=case_id))
    assert checked.events == len(events)

    started = time.perf_counter()
    with store.datastore.transaction(commit=False) as curs:
        leaves: list[bytes] = []
        for lo in range(0, size, 250_000):
            leaves += store.integrity.hashes.leaves(curs, lo, min(lo + 250_000, size))
    read_all_s = time.perf_counter() - started
    started = time.perf_counter()
    in_memory = [merkle.inclusion_proof(leaves, e["leaf_index"]) for e in events]
    in_memory_s = time.perf_counter() - started
    assert [[h.hex() for h in p] for p in in_memory] == [e["inclusion"] for e in events]
    older = sign_checkpoint(Checkpoint(ORIGIN, half, merkle.root(leaves[:half])), skey)
    verify_since_s, checked = timed(
        runs, lambda: verify_bundle(since_data, vkey, older, case_id_of=case_id)
    )
    assert checked.consistent_with == half

    started = time.perf_counter()
    done = subprocess.run(
        [*CASETRACK, "audit", "export", number],
        env=child_env(url, schema),
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    cli_s = time.perf_counter() - started
    assert done.stdout == data, "the command prints what export_bundle gives"
    return {
        "tree_size": size,
        "case_events": len(events),
        "bundle_bytes": len(data),
        "bytes_per_event": round(len(data) / len(events)),
        "state_base64_bytes": sum(len(e["state"]) for e in events),
        "hashes_per_inclusion_proof": f"{min(proof_lengths)}..{max(proof_lengths)}",
        "inclusion_hashes_total": sum(proof_lengths),
        "export_s": round(export_s, 4),
        "export_cli_s": round(cli_s, 3),
        "verify_s": round(verify_s, 4),
        "since": half,
        "consistency_hashes": len(since_bundle["consistency"]["proof"]),
        "bundle_since_bytes": len(since_data),
        "export_since_s": round(since_s, 4),
        "verify_since_s": round(verify_since_s, 4),
        "baseline_read_all_leaves_s": round(read_all_s, 3),
        "baseline_in_memory_proofs_s": round(in_memory_s, 3),
        "baseline_over_export": round((read_all_s + in_memory_s) / export_s, 1),
        "in_memory_only_over_export": round(in_memory_s / export_s, 1),
    }


if __name__ == "__main__":
    raise SystemExit(main())

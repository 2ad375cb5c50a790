"""Sealing an old log: how long `casetrack db init` takes to seal the personal data of a
log written before encryption (adapters.privacy.log_sealing), against the time it took to
write that log in the first place.

Fills a fresh schema with --cases generated cases (about 13.8 events each) written the way
the release before encryption wrote them (plaintext personal values, hashed and chained),
signs a checkpoint, then runs the rewrite: verify the whole log, open epoch 2, seal every
plaintext value in batches (each rehashing its cases' chains), sign the transition and the
new epoch's first checkpoint. Prints both rates and the ratio; the last line is JSON.

Database: CASETRACK_DATABASE_URL, or the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from plaintext import WritesPlaintext

from adapters import bootstrap, logs, signing_key
from adapters.postgres.event_store import CaseStore
from adapters.postgres.schema import drop_schema, init_schema
from adapters.privacy.log_sealing import seal_plaintext_log
from adapters.settings import Settings
from consumers.file_ingest import ingest_lines
from simulation import casegen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=7_200)
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    logs.configure("warning")
    settings = Settings.from_env()
    url = bootstrap.database_url(settings)
    vault = bootstrap.vault(settings)
    schema = f"bench_sealing_{args.cases}"
    drop_schema(url, schema)
    init_schema(url, schema)
    try:
        old = CaseStore(url, schema, vault)
        old.app.mapper.personal = WritesPlaintext(old.app.load_keys)
        lines = casegen.generate(args.cases, seed=args.seed)
        started = time.perf_counter()
        ingest_lines([(line + "\n").encode() for line in lines], "bench", old, batch_size=5000)
        write_s = time.perf_counter() - started
        events = old.recorder.max_notification_id() or 0
        old.close()
        with tempfile.TemporaryDirectory() as home:
            signer = signing_key.signer(_key(Path(home) / "signing.key"))
            store = CaseStore(url, schema, vault)
            try:
                store.integrity.checkpoint(signer)
                started = time.perf_counter()
                report = seal_plaintext_log(store, signer)
                seal_s = time.perf_counter() - started
            finally:
                store.close()
    finally:
        drop_schema(url, schema)
    assert report.epoch == 2 and report.signed
    print(f"{events:,} events of {args.cases:,} cases ({report.events:,} holding personal data)")
    print(f"baseline: writing the plaintext log: {write_s:.1f} s, {events / write_s:,.0f} events/s")
    print(
        f"sealing it (verify, rewrite, rehash, sign): {seal_s:.1f} s,"
        f" {events / seal_s:,.0f} events/s of log; ratio sealing/writing {seal_s / write_s:.2f}"
    )
    print(json.dumps({
        "benchmark": "sealing", "events": events, "sealed_events": report.events,
        "write_seconds": round(write_s, 2), "seal_seconds": round(seal_s, 2),
        "ratio_seal_to_write": round(seal_s / write_s, 3),
    }))  # fmt: skip
    return 0


def _key(path: Path) -> Path:
    signing_key.create(path)
    return path


if __name__ == "__main__":
    sys.exit(main())

"""`casetrack db init|stop|url`: the database's set-up."""

from __future__ import annotations

import argparse
import sys

from adapters import bootstrap


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database set-up").add_subparsers(required=True)
    db.add_parser(
        "init",
        help="create the schema, or migrate an older one (idempotent, resumable)",
        description="Create the schema, or bring one an older release left up to date:"
        " hash a log written before its hashes, and seal the personal data of a log written"
        " before it was encrypted (a new epoch of the log's tree, signed with the signing"
        " key: docs/privacy.md). Interrupted, it resumes where it stopped.",
    ).set_defaults(run=cmd_db_init)
    db.add_parser("stop", help="stop the embedded PostgreSQL").set_defaults(run=cmd_db_stop)
    db.add_parser("url", help="print the database URL in use").set_defaults(run=cmd_db_url)


def cmd_db_init(args: argparse.Namespace) -> int:
    from adapters import signing_key
    from adapters.postgres.schema import init_schema
    from adapters.privacy.log_sealing import SealingRefused, seal_plaintext_log

    settings = args.settings
    init_schema(bootstrap.database_url(settings), settings.schema)
    try:  # needed only to seal a log whose checkpoints were signed (the rewrite says so)
        signer: str | None = signing_key.signer(settings.signing_key_file)
    except signing_key.SigningKeyError:
        signer = None
    store = bootstrap.case_store(settings)
    try:
        sealed = seal_plaintext_log(
            store, signer, progress=lambda n: print(f"sealed {n:,} events", file=sys.stderr)
        )
    except SealingRefused as error:
        print(f"casetrack: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if sealed.epoch is not None:
        print(
            f"personal data sealed in {sealed.events:,} events"
            f"{' (resumed)' if sealed.resumed else ''}: the log's tree is now in epoch"
            f" {sealed.epoch}"
            + ("; transition and first checkpoint signed" if sealed.signed else " (unsigned: no"
               " signing key and no checkpoint was ever signed)")
        )  # fmt: skip
    print(f"schema {settings.schema} ready")
    return 0


def cmd_db_stop(args: argparse.Namespace) -> int:
    from adapters.postgres import embedded

    stopped = embedded.stop_server(args.settings.home)
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0


def cmd_db_url(args: argparse.Namespace) -> int:
    print(bootstrap.database_url(args.settings))
    return 0

"""`casetrack db init|stop|url`: the database's set-up."""

from __future__ import annotations

import argparse

from adapters import bootstrap


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database set-up").add_subparsers(required=True)
    db.add_parser("init", help="create the schema (idempotent)").set_defaults(run=cmd_db_init)
    db.add_parser("stop", help="stop the embedded PostgreSQL").set_defaults(run=cmd_db_stop)
    db.add_parser("url", help="print the database URL in use").set_defaults(run=cmd_db_url)


def cmd_db_init(args: argparse.Namespace) -> int:
    from adapters.postgres.schema import init_schema

    init_schema(bootstrap.database_url(args.settings), args.settings.schema)
    print(f"schema {args.settings.schema} ready")
    return 0


def cmd_db_stop(args: argparse.Namespace) -> int:
    from adapters.postgres import embedded

    stopped = embedded.stop_server(args.settings.home)
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0


def cmd_db_url(args: argparse.Namespace) -> int:
    print(bootstrap.database_url(args.settings))
    return 0

"""casetrack's command line: set up the database, ingest files or Kafka, read views and history."""

# The parser is wired here; each group of commands adds its own subcommands and holds
# their bodies (adapters/cli/*_commands.py). A body imports what only it needs
# (Kafka, FastAPI, rich, the projections) when it runs: every command pays for what
# is imported here, and `casetrack ingest` is timed end to end by bench_ingest.

from __future__ import annotations

import argparse
import contextlib
import sys

import psycopg
from eventsourcing.persistence import OperationalError as StoreOperationalError
from psycopg.conninfo import conninfo_to_dict

from adapters import bootstrap
from adapters.cli import (
    audit_commands,
    case_commands,
    db_commands,
    dead_letter_commands,
    http_commands,
    ingest_commands,
    kafka_commands,
    notify_commands,
    privacy_commands,
    projection_commands,
)
from adapters.cli.usage import UsageError
from adapters.postgres.event_store import SchemaMissing
from adapters.settings import Settings

# In the order `casetrack --help` lists them.
COMMAND_GROUPS = (
    db_commands,
    ingest_commands,
    kafka_commands,
    dead_letter_commands,
    case_commands,
    projection_commands,
    notify_commands,
    http_commands,
    audit_commands,
    privacy_commands,
)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.configured:  # offline commands (audit verify-bundle) read no configuration
        try:
            args.settings = Settings.from_env()
        except ValueError as e:  # a malformed CASETRACK_* variable, named in the message
            print(f"casetrack: {e}", file=sys.stderr)
            return 2
        bootstrap.configure_logging(args.settings)
    try:
        return int(args.run(args) or 0)
    except UsageError as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 2
    except SchemaMissing as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 1
    except (psycopg.OperationalError, StoreOperationalError) as e:
        # No connection (a refused certificate, a server down): libpq's reason, no traceback.
        print(f"casetrack: database unavailable: {_unavailable(e, args)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("casetrack: interrupted", file=sys.stderr)
        return 130


def _unavailable(error: Exception, args: argparse.Namespace) -> str:
    """libpq's first line of ``error``, the URL's password (were it quoted) masked."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    settings = getattr(args, "settings", None)
    if settings is not None and settings.database_url:
        with contextlib.suppress(psycopg.ProgrammingError):
            password = conninfo_to_dict(settings.database_url).get("password")
            if password:
                text = text.replace(str(password), "***")
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="casetrack", description=__doc__)
    p.set_defaults(configured=True)
    sub = p.add_subparsers(required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    return p


if __name__ == "__main__":
    sys.exit(main())

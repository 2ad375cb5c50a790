"""casetrack's command line: set up the database, ingest files, read views and history."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from adapters import database_url, logs
from adapters.cli.render import status_text
from adapters.postgres.event_store import CaseStore, SchemaMissing
from domain import application_number as numbers


class UsageError(Exception):
    """Bad input on the command line: printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure()
    try:
        return int(args.run(args) or 0)
    except UsageError as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 2
    except SchemaMissing as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("casetrack: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="casetrack", description=__doc__)
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="database set-up").add_subparsers(required=True)
    db.add_parser("init", help="create the schema (idempotent)").set_defaults(run=cmd_db_init)
    db.add_parser("stop", help="stop the embedded PostgreSQL").set_defaults(run=cmd_db_stop)
    db.add_parser("url", help="print the database URL in use").set_defaults(run=cmd_db_url)

    ingest = sub.add_parser("ingest", help="ingest a JSON Lines file of case events")
    ingest.add_argument("file", help="path, or - for standard input")
    ingest.add_argument("--json", action="store_true", help="end with a JSON summary line")
    ingest.add_argument("--batch-size", type=int, default=2000)
    ingest.add_argument("--origin", help="name recorded with dead letters (default: the path)")
    ingest.set_defaults(run=cmd_ingest)

    dl = sub.add_parser("dead-letters", help="rejected input").add_subparsers(required=True)
    dl_list = dl.add_parser("list", help="what was rejected and why")
    dl_list.add_argument("--limit", type=int, default=50)
    dl_list.add_argument("--json", action="store_true")
    dl_list.set_defaults(run=cmd_dead_letters_list)
    dl_show = dl.add_parser("show", help="one dead letter with its raw input")
    dl_show.add_argument("id", type=int)
    dl_show.set_defaults(run=cmd_dead_letters_show)

    status = sub.add_parser("status", help="the tracker's status view of a case")
    status.add_argument("application_number")
    status.add_argument("--lang", choices=("en", "fr"), default="en")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=cmd_status)

    history = sub.add_parser("history", help="every stored event of a case, in order")
    history.add_argument("application_number")
    history.add_argument("--json", action="store_true")
    history.add_argument("--as-of-version", type=int, metavar="N", help="state after event N")
    history.set_defaults(run=cmd_history)

    project = sub.add_parser("project", help="bring the status views up to date")
    project.add_argument("--once", action="store_true", help="catch up and exit")
    project.set_defaults(run=cmd_project)
    return p


@contextmanager
def _store(check: bool = True) -> Iterator[CaseStore]:
    store = CaseStore(database_url.database_url(), database_url.schema())
    try:
        if check:
            store.check_schema()
        yield store
    finally:
        store.close()


def _application_number(value: str) -> str:
    if not numbers.is_valid(value):
        raise UsageError("APPLICATION_NUMBER must be one uppercase letter and nine digits")
    return value


def _catch_up(store: CaseStore) -> int:
    from projections.case_status_table import CaseStatusProjection
    from projections.projector import Projector

    return Projector(store, CaseStatusProjection()).catch_up()


# ---------------------------------------------------------------- db


def cmd_db_init(args: argparse.Namespace) -> int:
    from adapters.postgres.schema import init_schema

    init_schema(database_url.database_url(), database_url.schema())
    print(f"schema {database_url.schema()} ready")
    return 0


def cmd_db_stop(args: argparse.Namespace) -> int:
    stopped = database_url.stop_embedded_server()
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0


def cmd_db_url(args: argparse.Namespace) -> int:
    print(database_url.database_url())
    return 0


# ---------------------------------------------------------------- ingest


def cmd_ingest(args: argparse.Namespace) -> int:
    from consumers.file_ingest import ingest_lines

    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.file == "-":
        stream: IO[bytes] = sys.stdin.buffer
        origin, total = args.origin or "stdin", None
    else:
        path = Path(args.file)
        if not path.is_file():
            raise UsageError(f"no such file: {args.file}")
        stream = path.open("rb")
        origin, total = args.origin or f"file:{path.resolve()}", path.stat().st_size
    with _store() as store, stream, _progress(total) as on_progress:
        summary = ingest_lines(
            stream, origin, store, batch_size=args.batch_size, on_progress=on_progress
        )
        _catch_up(store)
    counts = summary.as_dict()
    print(
        f"accepted {counts['accepted']}, duplicates {counts['duplicates']},"
        f" rejected {counts['rejected']}"
        + (" (see `casetrack dead-letters list`)" if counts["rejected"] else ""),
        file=sys.stderr if args.json else sys.stdout,
    )
    if args.json:
        print(json.dumps(counts))
    return 0


@contextmanager
def _progress(total: int | None) -> Iterator[Any]:
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("ingesting", total=total)
        yield lambda done: bar.update(task, completed=done)


# ---------------------------------------------------------------- dead letters


def cmd_dead_letters_list(args: argparse.Namespace) -> int:
    with _store() as store, store.datastore.transaction(commit=False) as curs:
        curs.execute(
            f"SELECT id, origin, line_number, error_kind, rule, field, reason, recorded_at"
            f" FROM {store.schema}.dead_letters ORDER BY id DESC LIMIT %s",
            (max(args.limit, 0),),
        )
        rows = curs.fetchall()
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
        return 0
    if not rows:
        print("no dead letters")
    for row in rows:
        where = f"{row['origin']}:{row['line_number']}" if row["line_number"] else row["origin"]
        print(f"#{row['id']} {where} [{row['error_kind']}] {row['reason']}")
    return 0


def cmd_dead_letters_show(args: argparse.Namespace) -> int:
    with _store() as store, store.datastore.transaction(commit=False) as curs:
        curs.execute(f"SELECT * FROM {store.schema}.dead_letters WHERE id = %s", (args.id,))
        row = curs.fetchone()
    if row is None:
        print(f"casetrack: no dead letter #{args.id}", file=sys.stderr)
        return 1
    row["raw"] = bytes(row.pop("raw")).decode("utf-8", errors="replace")
    row.pop("raw_sha256")
    print(json.dumps(row, default=str, indent=2, ensure_ascii=False))
    return 0


# ---------------------------------------------------------------- views


def cmd_status(args: argparse.Namespace) -> int:
    from projections import case_status
    from projections.case_status_table import read

    number = _application_number(args.application_number)
    with _store() as store, store.datastore.transaction(commit=False) as curs:
        view = read(curs, store.schema, number)
    if view is None:
        print(f"casetrack: no case {number}", file=sys.stderr)
        return 1
    shown = case_status.presented(view, date.today())
    print(json.dumps(shown, indent=2) if args.json else status_text(shown, args.lang))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from projections import case_status

    number = _application_number(args.application_number)
    with _store() as store:
        events = store.stored_events(numbers.case_id(number))
    if not events:
        print(f"casetrack: no case {number}", file=sys.stderr)
        return 1
    if args.as_of_version is not None:
        if not 1 <= args.as_of_version <= len(events):
            raise UsageError(f"--as-of-version must be between 1 and {len(events)}")
        upto = events[: args.as_of_version]
        view = case_status.fold(upto)
        assert view is not None
        as_of = upto[-1].timestamp.date()
        print(
            json.dumps(
                {"version": args.as_of_version, "status": case_status.presented(view, as_of)},
                indent=2,
            )
        )
        return 0
    entries = [
        {
            "version": e.originator_version,
            "type": e.event_type,
            "event_id": str(e.event_id),
            "source": e.source,
            "occurred_at": e.occurred_at.isoformat(),
            "recorded_at": e.timestamp.isoformat(),
        }
        for e in events
    ]
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        for e in entries:
            print(
                f"{e['version']:>3}  {e['occurred_at'][:19]}  {e['type']:<28}"
                f" {e['source']:<16} {e['event_id']}  recorded {e['recorded_at'][:19]}"
            )
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    with _store() as store:
        while True:
            applied = _catch_up(store)
            if applied or args.once:
                print(f"{datetime.now(UTC):%H:%M:%S} applied {applied} events", file=sys.stderr)
            if args.once:
                return 0
            time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main())

"""casetrack's command line: set up the database, ingest files or Kafka, read views and history."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from adapters import bootstrap
from adapters.cli.render import status_text
from adapters.postgres.event_store import CaseStore, SchemaMissing
from adapters.settings import Settings
from domain import application_number as numbers
from domain.catalogue import LANGUAGES
from projections.roles import ROLES

if TYPE_CHECKING:
    from consumers.kafka.lag import LagReport


class UsageError(Exception):
    """Bad input on the command line: printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
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

    consume = sub.add_parser("consume", help="consume case events from Kafka until stopped")
    consume.add_argument("--bootstrap-servers", required=True, metavar="HOST:PORT")
    consume.add_argument("--topic", default="case-events", help="default case-events")
    consume.add_argument("--group", default="casetrack", help="consumer group (default casetrack)")
    consume.add_argument("--dlq-topic", help="dead-letter topic (default: TOPIC.dlq)")
    consume.add_argument("--status", action="store_true", help="print lag per partition and exit")
    consume.add_argument("--json", action="store_true", help="with --status: JSON")
    consume.add_argument("--max-poll-records", type=int, default=500, metavar="N")
    consume.add_argument("--session-timeout-ms", type=int, default=10_000, metavar="MS")
    consume.add_argument("--max-poll-interval-ms", type=int, default=30_000, metavar="MS")
    consume.set_defaults(run=cmd_consume)

    dl = sub.add_parser("dead-letters", help="rejected input").add_subparsers(required=True)
    dl_list = dl.add_parser("list", help="what was rejected and why")
    dl_list.add_argument("--limit", type=int, default=50)
    dl_list.add_argument("--json", action="store_true")
    dl_list.set_defaults(run=cmd_dead_letters_list)
    dl_show = dl.add_parser("show", help="one dead letter with its raw input")
    dl_show.add_argument("id", type=int)
    dl_show.set_defaults(run=cmd_dead_letters_show)
    dl_retry = dl.add_parser("retry", help="feed one dead letter in again, after a fix")
    dl_retry.add_argument("id", type=int)
    dl_retry.set_defaults(run=cmd_dead_letters_retry)

    status = sub.add_parser("status", help="the tracker's status view of a case")
    status.add_argument("application_number")
    status.add_argument("--lang", choices=LANGUAGES, default="en")
    status.add_argument("--json", action="store_true")
    status.add_argument(
        "--role",
        choices=ROLES,
        default="principal_applicant",
        help="show what this role sees",
    )
    status.set_defaults(run=cmd_status)

    history = sub.add_parser("history", help="every stored event of a case, in order")
    history.add_argument("application_number")
    history.add_argument("--json", action="store_true")
    history.add_argument("--as-of-version", type=int, metavar="N", help="state after event N")
    history.set_defaults(run=cmd_history)

    project = sub.add_parser("project", help="keep the views up to date (all, or those named)")
    project.add_argument("names", nargs="*", metavar="NAME")
    project.add_argument("--once", action="store_true", help="catch up and exit")
    project.add_argument("--poll-interval", type=float, default=2.0, metavar="SECONDS")
    project.set_defaults(run=cmd_project)

    projections = sub.add_parser("projections", help="inspect and rebuild views")
    psub = projections.add_subparsers(required=True)
    p_status = psub.add_parser("status", help="position, lag and last error of each projection")
    p_status.add_argument("--json", action="store_true")
    p_status.set_defaults(run=cmd_projections_status)
    p_rebuild = psub.add_parser("rebuild", help="blue-green rebuild of views from the log")
    p_rebuild.add_argument("names", nargs="+", metavar="NAME")
    p_rebuild.add_argument("--verify", action="store_true", help="compare with a replay, no swap")
    p_rebuild.add_argument(
        "--workers",
        type=int,
        help="processes replaying case ranges in parallel (default: one per core on large logs)",
    )
    p_rebuild.set_defaults(run=cmd_projections_rebuild)
    p_resume = psub.add_parser("resume", help="retry a halted projection")
    p_resume.add_argument("name")
    p_resume.set_defaults(run=cmd_projections_resume)

    from adapters.cli.http_commands import add_commands as add_http_commands

    add_http_commands(sub)  # serve, auditors
    return p


@contextmanager
def _store(settings: Settings) -> Iterator[CaseStore]:
    with closing(bootstrap.case_store(settings)) as store:
        yield store


def _application_number(value: str) -> str:
    if not numbers.is_valid(value):
        raise UsageError("APPLICATION_NUMBER must be one uppercase letter and nine digits")
    return value


def _projections(names: list[str] | None) -> list[Any]:
    from projections.registry import select

    try:
        return select(names)
    except KeyError as e:
        raise UsageError(e.args[0]) from None


# ---------------------------------------------------------------- db


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
    with _store(args.settings) as store, stream, _progress(total) as on_progress:
        summary = ingest_lines(
            stream, origin, store, batch_size=args.batch_size, on_progress=on_progress
        )
    counts = summary.as_dict()
    print(
        f"accepted {counts['accepted']}, duplicates {counts['duplicates']},"
        f" rejected {counts['rejected']}"
        + (" (see `casetrack dead-letters list`)" if counts["rejected"] else "")
        + "; views follow with `casetrack project`",
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


# ---------------------------------------------------------------- kafka


def cmd_consume(args: argparse.Namespace) -> int:
    import signal
    import threading

    from consumers.kafka.record_batches import CodecsMissing, require_codecs
    from consumers.kafka.settings import ConsumerSettings

    if args.max_poll_records < 1:
        raise UsageError("--max-poll-records must be at least 1")
    settings = ConsumerSettings(
        bootstrap_servers=args.bootstrap_servers,
        topic=args.topic,
        group=args.group,
        dlq_topic=args.dlq_topic,
        max_poll_records=args.max_poll_records,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=max(100, args.session_timeout_ms // 4),
        max_poll_interval_ms=args.max_poll_interval_ms,
    )
    if args.status:
        from kafka.errors import KafkaError

        with _store(args.settings) as store:
            try:
                report = bootstrap.kafka_lag(store, settings)
            except KafkaError as e:
                print(f"casetrack: broker unavailable: {e}", file=sys.stderr)
                return 1
        if args.json:
            print(json.dumps(report.as_dict(), indent=2))
        else:
            _print_lag(report)
        return 0
    try:
        require_codecs()
    except CodecsMissing as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(
        f"consuming {settings.topic} as group {settings.group}; Ctrl-C to stop",
        file=sys.stderr,
    )
    # Waits for the database: a consumer may start before it (as `casetrack project` does).
    opened = bootstrap.case_store_when_ready(args.settings, stop)
    if opened is None:
        return 0
    with closing(opened) as store:
        stats = bootstrap.kafka_consumer(store, settings).run(stop)
    print(
        f"accepted {stats.accepted}, duplicates {stats.duplicates}, rejected {stats.rejected}"
        f" in {stats.batches} batches"
    )
    return 0


def _print_lag(report: LagReport) -> None:
    if not report.partitions:
        print(f"topic {report.topic} has no partitions yet")
        return
    print(f"topic {report.topic}, group {report.group}")
    columns = ("log start", "log end", "stored", "kafka")
    print(f"{'partition':>9} " + " ".join(f"{c:>10}" for c in columns) + f" {'lag':>8}")
    for p in report.partitions:
        stored = "-" if p.stored is None else str(p.stored)
        committed = "-" if p.committed is None else str(p.committed)
        note = ""
        if p.log_replaced:
            note = "  LOG REPLACED: stored offset is of a lost log; re-read from the start"
        elif p.lag < 0:
            note = "  BEYOND LOG END"
        print(
            f"{p.partition:>9} {p.log_start:>10} {p.log_end:>10} {stored:>10} {committed:>10}"
            f" {p.lag:>8}{note}"
        )
    print(f"total lag {report.total} messages", end="")
    if report.unpublished_dead_letters:
        print(f"; {report.unpublished_dead_letters} dead letters not yet on the dead-letter topic")
    else:
        print()


# ---------------------------------------------------------------- dead letters


def cmd_dead_letters_list(args: argparse.Namespace) -> int:
    with _store(args.settings) as store:
        rows = store.dead_letters.latest(args.limit)
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
        return 0
    if not rows:
        print("no dead letters")
    for row in rows:
        where = row["origin"]
        if row["position"] is not None:
            where += f" {'offset' if row['topic'] is not None else 'line'} {row['position']}"
        print(f"#{row['id']} {where} [{row['error_kind']}] {row['reason']}")
    return 0


def cmd_dead_letters_show(args: argparse.Namespace) -> int:
    with _store(args.settings) as store:
        row = store.dead_letters.get(args.id)
    if row is None:
        print(f"casetrack: no dead letter #{args.id}", file=sys.stderr)
        return 1
    row["raw"] = bytes(row.pop("raw")).decode("utf-8", errors="replace")
    row.pop("raw_sha256")
    print(json.dumps(row, default=str, indent=2, ensure_ascii=False))
    return 0


def cmd_dead_letters_retry(args: argparse.Namespace) -> int:
    from consumers.dead_letter_retry import retry_dead_letter
    from domain.commands import Outcome, RecordCaseEvent

    with _store(args.settings) as store:
        retried = retry_dead_letter(store, store.dead_letters, args.id)
    if retried is None:
        print(f"casetrack: no dead letter #{args.id}", file=sys.stderr)
        return 1
    parsed = retried.parsed
    what = (
        f"{parsed.type} for {parsed.application_number}"
        if isinstance(parsed, RecordCaseEvent)
        else "message"
    )
    if retried.outcome is Outcome.ACCEPTED:
        print(f"#{args.id} accepted: {what} appended")
        return 0
    if retried.outcome is Outcome.DUPLICATE:
        print(f"#{args.id} already stored: {what} is a duplicate, nothing appended")
        return 0
    kind_reason = retried.rejection
    reason = f"[{kind_reason[0]}] {kind_reason[1]}" if kind_reason else str(parsed)
    print(f"#{args.id} rejected again: {reason}")
    return 1


# ---------------------------------------------------------------- views


def _note_lag(store: CaseStore) -> None:
    """Views are kept by `casetrack project`; say so when they are behind the log."""
    from projections.case_status_table import CaseStatusProjection
    from projections.positions import lag
    from projections.projector import Projector

    behind = lag(
        store.recorder.max_notification_id() or 0,
        Projector(store, CaseStatusProjection()).position(),
    )
    if behind > 0:
        print(
            f"note: the views are {behind} events behind the log;"
            " run `casetrack project` to bring them up to date",
            file=sys.stderr,
        )


def cmd_status(args: argparse.Namespace) -> int:
    from projections import case_history_table, processing_stats_table, tracker_view
    from projections.case_status_table import read

    number = _application_number(args.application_number)
    today = date.today()
    with _store(args.settings) as store, store.datastore.transaction(commit=False) as curs:
        _note_lag(store)
        view = read(curs, store.schema, number)
        if view is None:
            print(f"casetrack: no case {number}", file=sys.stderr)
            return 1
        wanted = tracker_view.estimate_of(view, args.role)
        estimate = None
        if wanted is not None:
            estimate = processing_stats_table.estimate(
                curs, store.schema, wanted.category, wanted.received_on, today
            )
        history = case_history_table.read(curs, store.schema, numbers.case_id(number))
    shown = tracker_view.tracker_view(
        view, today, args.role, estimate, tracker_view.served_history(history, args.role, args.lang)
    )
    print(json.dumps(shown, indent=2) if args.json else status_text(shown, args.lang))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from projections.as_of import state_as_of

    number = _application_number(args.application_number)
    with _store(args.settings) as store:
        events = store.stored_events(numbers.case_id(number))
    if not events:
        print(f"casetrack: no case {number}", file=sys.stderr)
        return 1
    if args.as_of_version is not None:
        if not 1 <= args.as_of_version <= len(events):
            raise UsageError(f"--as-of-version must be between 1 and {len(events)}")
        state = state_as_of(events, version=args.as_of_version)
        print(json.dumps({"version": args.as_of_version, "status": state}, indent=2))
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
    import signal
    import threading

    from projections import daemon
    from projections.projector import Projector

    projections = _projections(args.names)
    if args.once:
        with _store(args.settings) as store:
            for projection in projections:
                applied = Projector(store, projection).catch_up()
                print(f"{projection.name}: applied {applied} events")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    names = ", ".join(p.name for p in projections)
    print(f"projecting {names}; Ctrl-C to stop", file=sys.stderr)
    try:
        # Waits for the database: a daemon may start before it.
        opened = bootstrap.case_store_when_ready(args.settings, stop)
        if opened is None:
            return 0
        with closing(opened) as store:
            daemon.run(store, projections, stop, poll_interval=args.poll_interval)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_projections_status(args: argparse.Namespace) -> int:
    from projections.status import statuses

    with _store(args.settings) as store:
        found = statuses(store, _projections(None))
    if args.json:
        print(json.dumps([s.as_dict() for s in found], indent=2))
        return 0
    print(f"{'projection':<18} {'position':>10} {'head':>10} {'lag':>8} {'lag s':>9}  state")
    for s in found:
        state = f"HALTED at {s.halted_at}" if s.halted_at else "ok"
        if s.dead_letters:
            state += f", {s.dead_letters} dead letters"
        print(
            f"{s.name:<18} {s.position:>10} {s.head:>10} {s.lag_events:>8}"
            f" {s.lag_seconds:>9.1f}  {state}"
        )
        if s.last_error:
            print(f"{'':<18} last error {s.last_error_at}: {s.last_error}")
    return 0


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    from adapters.bootstrap import open_case_store
    from projections import rebuild

    projections = _projections(args.names)
    with _store(args.settings) as store:
        if args.verify:
            report = rebuild.verify(
                store, projections, workers=args.workers, opener=open_case_store
            )
            for table, differences in report.differences.items():
                print(
                    f"{table}: {'identical' if not differences else 'DIFFERS'}"
                    f" ({report.tables[table].rows} rows replayed to position {report.head})"
                )
                for line in differences:
                    print(f"  {line}")
            return 0 if report.ok else 1
        started = time.perf_counter()
        try:
            report = rebuild.rebuild(
                store, projections, workers=args.workers, opener=open_case_store
            )
        except rebuild.RebuildCheckFailed as e:
            print(f"casetrack: rebuild aborted, live views untouched: {e}", file=sys.stderr)
            return 1
        elapsed = time.perf_counter() - started
        rows = ", ".join(f"{name} {check.rows} rows" for name, check in report.tables.items())
        print(
            f"rebuilt {', '.join(report.projections)} from {report.events} events of"
            f" {report.cases} cases in {elapsed:.1f}s: {rows}; checked; caught up"
            f" {report.caught_up} more; swapped in"
        )
    return 0


def cmd_projections_resume(args: argparse.Namespace) -> int:
    from projections.projector import resume

    (projection,) = _projections([args.name])
    with _store(args.settings) as store:
        resume(store, projection.name)
    print(f"{projection.name} resumed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`casetrack ingest`: a JSON Lines file (or standard input) through the write side, with a
progress bar on a terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import IO

from adapters import bootstrap
from adapters.cli.usage import UsageError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = sub.add_parser("ingest", help="ingest a JSON Lines file of case events")
    ingest.add_argument("file", help="path, or - for standard input")
    ingest.add_argument("--json", action="store_true", help="end with a JSON summary line")
    ingest.add_argument("--batch-size", type=int, default=2000)
    ingest.add_argument("--origin", help="name recorded with dead letters (default: the path)")
    ingest.set_defaults(run=cmd_ingest)


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
    with (
        closing(bootstrap.case_store(args.settings)) as store,
        stream,
        _progress(total) as on_progress,
    ):
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
def _progress(total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A progress bar's update (bytes read) on a terminal; None elsewhere (no bar)."""
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

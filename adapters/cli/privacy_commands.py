"""`casetrack privacy erase|retention|lift|rotate-kek`: erasure of personal data by
crypto-shredding (adapters/privacy/erasure.py), its retention schedule, and the KEK.

People are named by UCI (a representative by email). A UCI on a command line shows in
`ps` to other users of the machine: `--person -` reads them from standard input instead,
one per line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from contextlib import closing
from datetime import UTC, date, datetime, timedelta

from adapters import bootstrap
from adapters.cli.usage import UsageError
from domain.application_number import is_valid
from domain.personal_data import ERASURE_REASONS

_PERIOD = re.compile(r"([1-9][0-9]{0,3})([dmy])")
_DAYS = {"d": 1, "m": 30, "y": 365}


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    privacy = sub.add_parser("privacy", help="personal data: erasure, retention, keys")
    commands = privacy.add_subparsers(required=True)
    erase = commands.add_parser(
        "erase", help="erase people's personal data (destroys their keys); idempotent"
    )
    erase.add_argument("--person", action="append", default=[], metavar="UCI|EMAIL",
                       help="every file of this person ('-': read them from stdin)")  # fmt: skip
    erase.add_argument("--application", action="append", default=[], metavar="F…",
                       help="every person on this file")  # fmt: skip
    erase.add_argument("--reason", default="request", choices=ERASURE_REASONS)
    erase.add_argument("--json", action="store_true")
    erase.set_defaults(run=cmd_erase)
    retention = commands.add_parser(
        "retention", help="erase the personal data of files closed longer than a period"
    )
    retention.add_argument("--closed-for", required=True, metavar="PERIOD",
                           help="e.g. 2y, 18m, 90d (a month is 30 days, a year 365)")  # fmt: skip
    retention.add_argument("--dry-run", action="store_true", help="list, erase nothing")
    retention.add_argument("--json", action="store_true")
    retention.set_defaults(run=cmd_retention)
    lift = commands.add_parser(
        "lift", help="lift an erased person's tombstone: a new file for them is accepted again"
    )
    lift.add_argument("--person", required=True, metavar="UCI|EMAIL")
    lift.set_defaults(run=cmd_lift)
    rotate = commands.add_parser(
        "rotate-kek",
        help="rewrap every data key with CASETRACK_KEK_FILE; the old KEK is"
        " CASETRACK_KEK_PREVIOUS_FILE",
    )
    rotate.set_defaults(run=cmd_rotate_kek)


def cmd_erase(args: argparse.Namespace) -> int:
    from adapters.privacy.erasure import erase

    people = _people(args.person)
    if not people and not args.application:
        raise UsageError("name at least one --person or --application")
    if not all(is_valid(n) for n in args.application):
        raise UsageError("--application takes one uppercase letter and nine digits")
    with closing(bootstrap.case_store(args.settings)) as store:
        report = erase(store, people=people, applications=args.application, reason=args.reason)
    if args.json:
        print(json.dumps(report.as_dict()))
        return 1 if report.unknown else 0
    print(
        f"erased {report.subjects} people on {len(report.cases)} files: {report.keys_destroyed}"
        f" keys destroyed, {report.events_appended} personal_data.erased events appended,"
        f" {report.accounts_disabled} accounts disabled, {report.dead_letters_dropped}"
        " dead letters' raw input dropped"
    )
    if report.unknown:
        print("no such file: " + ", ".join(report.unknown), file=sys.stderr)
    if report.not_encrypted:
        print(
            "not erased (written before encryption; `casetrack db init` migrates them): "
            + ", ".join(report.not_encrypted),
            file=sys.stderr,
        )
    return 1 if report.unknown else 0


def cmd_retention(args: argparse.Namespace) -> int:
    from adapters.privacy.erasure import erase, expired_files

    cutoff = date.today() - _period(args.closed_for)
    with closing(bootstrap.case_store(args.settings)) as store:
        numbers = expired_files(store, cutoff)
        report = None
        if numbers and not args.dry_run:
            report = erase(store, applications=numbers, reason="retention")
    summary = {
        "closed_before": cutoff.isoformat(),
        "files": numbers,
        "dry_run": args.dry_run,
        "erased": report.as_dict() if report else None,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    verb = "would erase" if args.dry_run else "erased"
    print(f"{len(numbers)} files closed before {cutoff} with personal data: {verb} them")
    for number in numbers:
        print(f"  {number}")
    return 0


def cmd_lift(args: argparse.Namespace) -> int:
    people = _people([args.person])
    if len(people) != 1:  # `-` with no line or several: a usage error, not a traceback
        raise UsageError("--person takes one UCI or email ('-': one line on stdin)")
    [person] = people
    with closing(bootstrap.case_store(args.settings)) as store:
        lifted = store.lift_tombstone(person)
    print("tombstone lifted" if lifted else "no tombstone for that person")
    return 0


def cmd_rotate_kek(args: argparse.Namespace) -> int:
    if args.settings.previous_kek is None:
        raise UsageError(
            "set CASETRACK_KEK_PREVIOUS_FILE to the KEK being replaced and CASETRACK_KEK_FILE"
            " to the new one"
        )
    started = datetime.now(UTC)
    with closing(bootstrap.case_store(args.settings)) as store:
        done = store.rewrap_data_keys()
    seconds = (datetime.now(UTC) - started).total_seconds()
    print(f"rewrapped {done} data keys in {seconds:.1f} s; the previous KEK is no longer needed")
    return 0


def _people(given: list[str]) -> list[str]:
    people: list[str] = []
    for value in given:
        if value == "-":
            people += [line.strip() for line in sys.stdin if line.strip()]
        elif value.strip():
            people.append(value.strip())
    return people


def _period(text: str) -> timedelta:
    match = _PERIOD.fullmatch(text.strip())
    if match is None:
        raise UsageError("--closed-for takes a period such as 2y, 18m or 90d")
    return timedelta(days=int(match[1]) * _DAYS[match[2]])

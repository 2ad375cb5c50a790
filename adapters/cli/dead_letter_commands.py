"""`casetrack dead-letters list|show|retry|expire`: what the write side rejected, feeding it
in again after a fix (consumers/dead_letter_retry.py), and dropping raw input past its
retention (adapters/raw_input_expiry.py)."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from contextlib import closing

from adapters import bootstrap


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    dl_expire = dl.add_parser(
        "expire",
        help="drop the raw input of dead letters older than CASETRACK_DEAD_LETTER_RAW_DAYS"
        " (`casetrack project` does it hourly)",
    )
    dl_expire.set_defaults(run=cmd_dead_letters_expire)


def cmd_dead_letters_expire(args: argparse.Namespace) -> int:
    from datetime import timedelta

    days = args.settings.dead_letter_raw_days
    with closing(bootstrap.case_store(args.settings)) as store:
        dropped = store.dead_letters.drop_older_than(timedelta(days=days))
    print(f"dropped the raw input of {dropped} dead letters older than {days} days")
    return 0


def cmd_dead_letters_list(args: argparse.Namespace) -> int:
    with closing(bootstrap.case_store(args.settings)) as store:
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
    with closing(bootstrap.case_store(args.settings)) as store:
        row = store.dead_letters.get(args.id)
    if row is None:
        print(f"casetrack: no dead letter #{args.id}", file=sys.stderr)
        return 1
    row["raw"] = bytes(row.pop("raw")).decode("utf-8", errors="replace")
    row.pop("raw_sha256")
    row["headers"] = [  # a Kafka record's, stored as [name, base64]
        [name, base64.b64decode(value).decode("utf-8", errors="replace")]
        for name, value in row.get("headers") or ()
    ]
    print(json.dumps(row, default=str, indent=2, ensure_ascii=False))
    return 0


def cmd_dead_letters_retry(args: argparse.Namespace) -> int:
    from adapters.postgres.dead_letters import RawInputDropped
    from consumers.dead_letter_retry import retry_dead_letter
    from domain.commands import Outcome, RecordCaseEvent

    with closing(bootstrap.case_store(args.settings)) as store:
        try:
            retried = retry_dead_letter(store, store.dead_letters, args.id)
        except RawInputDropped as e:
            print(f"casetrack: {e}", file=sys.stderr)
            return 1
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
    rejection = retried.rejection
    reason = f"[{rejection[0]}] {rejection[1]}" if rejection else str(parsed)
    print(f"#{args.id} rejected again: {reason}")
    return 1

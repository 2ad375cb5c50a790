"""`casetrack status` (the tracker's view of a case, as projections.tracker_view assembles it
for the API too) and `casetrack history` (the case's stored events with what each changed in
its state, or its state as of one)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing
from datetime import date
from typing import TYPE_CHECKING

from adapters import bootstrap
from adapters.cli.usage import UsageError
from domain import application_number as numbers
from domain.catalogue import LANGUAGES
from projections.roles import ROLES

if TYPE_CHECKING:
    from adapters.postgres.event_store import CaseStore


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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

    history = sub.add_parser(
        "history", help="every stored event of a case, in order, with what it changed"
    )
    history.add_argument("application_number")
    history.add_argument("--json", action="store_true")
    history.add_argument("--as-of-version", type=int, metavar="N", help="state after event N")
    history.set_defaults(run=cmd_history)


def _application_number(value: str) -> str:
    if not numbers.is_valid(value):
        raise UsageError("APPLICATION_NUMBER must be one uppercase letter and nine digits")
    return value


def _note_lag(store: CaseStore) -> None:
    """Views are kept by `casetrack project`; say so when they are behind the log."""
    from projections.case_status_table import CaseStatusProjection
    from projections.status import statuses

    (case_status,) = statuses(store, [CaseStatusProjection()])
    if case_status.lag_events > 0:
        print(
            f"note: the views are {case_status.lag_events} events behind the log;"
            " run `casetrack project` to bring them up to date",
            file=sys.stderr,
        )


def cmd_status(args: argparse.Namespace) -> int:
    from adapters.cli.render import status_text
    from projections import case_history_table, processing_stats_table, tracker_view
    from projections.case_status_table import read

    number = _application_number(args.application_number)
    today = date.today()
    with (
        closing(bootstrap.case_store(args.settings)) as store,
        store.datastore.transaction(commit=False) as curs,
    ):
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
    from adapters.cli.render import change_lines
    from projections.as_of import state_as_of
    from projections.changes import event_changes

    number = _application_number(args.application_number)
    with closing(bootstrap.case_store(args.settings)) as store:
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
    changes = event_changes(events)
    if args.json:
        entries = [
            {
                "version": e.originator_version,
                "type": e.event_type,
                "event_id": str(e.event_id),
                "source": e.source,
                "occurred_at": e.occurred_at.isoformat(),
                "recorded_at": e.timestamp.isoformat(),
                "changes": [{"path": c.path, "before": c.before, "after": c.after} for c in cs],
            }
            for e, cs in zip(events, changes, strict=True)
        ]
        print(json.dumps(entries, indent=2))
        return 0
    for e, cs in zip(events, changes, strict=True):
        print(
            f"{e.originator_version:>3}  {e.occurred_at.isoformat()[:19]}  {e.event_type:<28}"
            f" {e.source:<16} {e.event_id!s}  recorded {e.timestamp.isoformat()[:19]}"
        )
        for line in change_lines(cs, indent=" " * 5):
            print(line)
    return 0

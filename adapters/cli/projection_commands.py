"""`casetrack project` (keep the views up to date) and `casetrack projections
status|rebuild|resume` (inspect, rebuild and restart them)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import closing
from typing import TYPE_CHECKING

from adapters import bootstrap, probes
from adapters.cli.usage import UsageError

if TYPE_CHECKING:
    from projections.projector import Projection


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    project = sub.add_parser("project", help="keep the views up to date (all, or those named)")
    project.add_argument("names", nargs="*", metavar="NAME")
    project.add_argument("--once", action="store_true", help="catch up and exit")
    project.add_argument("--poll-interval", type=float, default=2.0, metavar="SECONDS")
    probes.add_flag(project)
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


def _projections(names: list[str] | None) -> list[Projection]:
    from projections.registry import select

    try:
        return select(names)
    except KeyError as e:
        raise UsageError(e.args[0]) from None


def cmd_project(args: argparse.Namespace) -> int:
    import signal

    from projections import lanes
    from projections.projector import Projector

    projections = _projections(args.names)
    if args.once:
        with closing(bootstrap.case_store(args.settings)) as store:
            for projection in projections:
                applied = Projector(store, projection).catch_up()
                print(f"{projection.name}: applied {applied} events")
        return 0
    url = bootstrap.database_url(args.settings)
    port = args.probe_port or args.settings.probe_port
    stop = probes.stop_event(port, [("database", probes.database(url))])
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    names = ", ".join(p.name for p in projections)
    print(f"projecting {names}; Ctrl-C to stop", file=sys.stderr)
    try:
        # Waits for the database: a daemon may start before it.
        opened = bootstrap.case_store_when_ready(args.settings, stop)
        if opened is None:
            return 0
        with closing(opened) as store:
            lanes.run(
                store,
                projections,
                stop,
                poll_interval=args.poll_interval,
                after_catch_up=bootstrap.daemon_chores(args.settings, store),
                leases=lambda: bootstrap.projection_leases(args.settings),
            )
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_projections_status(args: argparse.Namespace) -> int:
    from projections.leases import CHORES
    from projections.status import statuses

    projections = _projections(None)
    with closing(bootstrap.case_store(args.settings)) as store:
        holders = bootstrap.lease_holders(store, [*(p.name for p in projections), CHORES])
        standing = statuses(store, projections, holders)
    if args.json:
        print(json.dumps([s.as_dict() for s in standing], indent=2))
        return 0
    print(
        f"{'projection':<18} {'position':>10} {'head':>10} {'lag':>8} {'lag s':>9}"
        f"  {'held by':<24}  state"
    )
    for s in standing:
        state = f"HALTED at {s.halted_at}" if s.halted_at else "ok"
        if s.dead_letters:
            state += f", {s.dead_letters} dead letters"
        print(
            f"{s.name:<18} {s.position:>10} {s.head:>10} {s.lag_events:>8}"
            f" {s.lag_seconds:>9.1f}  {s.holder or '-':<24}  {state}"
        )
        if s.last_error:
            print(f"{'':<18} last error {s.last_error_at}: {s.last_error}")
    print(f"chores (checkpoints, raw input expiry) held by {holders.get(CHORES, '-')}")
    return 0


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    from projections import rebuild
    from projections.replay import RebuildCheckFailed

    projections = _projections(args.names)
    with closing(bootstrap.case_store(args.settings)) as store:
        if args.verify:
            report = rebuild.verify(
                store,
                projections,
                workers=args.workers,
                opener=bootstrap.store_opener(args.settings),
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
                store,
                projections,
                workers=args.workers,
                opener=bootstrap.store_opener(args.settings),
            )
        except RebuildCheckFailed as e:
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
    with closing(bootstrap.case_store(args.settings)) as store:
        resume(store, projection.name)
    print(f"{projection.name} resumed")
    return 0

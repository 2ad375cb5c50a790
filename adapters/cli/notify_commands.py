"""`casetrack notify` (send change notifications: emails and webhooks) and
`casetrack webhooks deliveries|redeliver` (the operator's view of webhook deliveries)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing

from adapters import bootstrap, probes
from adapters.cli.usage import UsageError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notify = sub.add_parser("notify", help="send change notifications (email, webhooks)")
    notify.add_argument("--once", action="store_true", help="send what is due and exit")
    notify.add_argument("--poll-interval", type=float, default=1.0, metavar="SECONDS")
    notify.add_argument(
        "--workers", type=int, default=2, metavar="N",
        help="sending threads per channel (email, webhooks); default 2",
    )  # fmt: skip
    probes.add_flag(notify)
    notify.set_defaults(run=cmd_notify)

    webhooks = sub.add_parser("webhooks", help="webhook deliveries")
    wsub = webhooks.add_subparsers(required=True)
    w_list = wsub.add_parser("deliveries", help="the latest deliveries, newest first")
    w_list.add_argument("--state", choices=("pending", "sent", "dead"))
    w_list.add_argument("--limit", type=int, default=50)
    w_list.add_argument("--json", action="store_true")
    w_list.set_defaults(run=cmd_deliveries)
    w_again = wsub.add_parser(
        "redeliver", help="send a delivery again now (re-enables its endpoint)"
    )
    w_again.add_argument("id", type=int)
    w_again.set_defaults(run=cmd_redeliver)


def cmd_notify(args: argparse.Namespace) -> int:
    import signal

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    notifier = bootstrap.notifier(
        args.settings, poll_interval=args.poll_interval, workers=args.workers
    )
    if args.once:
        with closing(notifier):
            total = 0
            while sent := notifier.round():
                total += sent
        print(f"sent {total}")
        return 0
    url = bootstrap.database_url(args.settings)
    stop = probes.stop_event(
        args.probe_port or args.settings.probe_port, [("database", probes.database(url))]
    )
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("sending notifications; Ctrl-C to stop", file=sys.stderr)
    try:
        notifier.run(stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    from adapters.postgres.notify_admin import deliveries

    rows = deliveries(
        bootstrap.database_url(args.settings), args.settings.schema, args.state, args.limit
    )
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    print(f"{'id':>8} {'endpoint':>8} {'application':<12} {'state':<8} {'tries':>5}  last error")
    for r in rows:
        print(
            f"{r['id']:>8} {r['endpoint_id']:>8} {r['application_number']:<12}"
            f" {r['state']:<8} {r['attempts']:>5}  {r['last_error'] or ''}"
        )
    return 0


def cmd_redeliver(args: argparse.Namespace) -> int:
    from adapters.postgres.notify_admin import redeliver

    if not redeliver(bootstrap.database_url(args.settings), args.settings.schema, args.id):
        raise UsageError(f"no webhook delivery {args.id}")
    print(f"delivery {args.id} will be sent again")
    return 0

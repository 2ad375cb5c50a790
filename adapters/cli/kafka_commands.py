"""`casetrack consume`: consume case events from Kafka until stopped, or (``--status``)
print the group's lag per partition."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing
from typing import TYPE_CHECKING

from adapters import bootstrap, probes
from adapters.cli.usage import UsageError
from consumers.kafka import security_flags

if TYPE_CHECKING:
    from consumers.kafka.lag import LagReport
    from consumers.kafka.settings import ConsumerSettings


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    security_flags.add_flags(consume)
    probes.add_flag(consume)
    consume.set_defaults(run=cmd_consume)


def cmd_consume(args: argparse.Namespace) -> int:
    kafka = _consumer_settings(args)
    from consumers.kafka.security import KafkaTlsRefused

    try:  # a handshake that cannot succeed is refused now, not retried for ever
        kafka.security.check_tls(kafka.bootstrap_servers)
    except KafkaTlsRefused as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 1
    if args.status:
        return _status(args, kafka)
    import signal

    from consumers.kafka.record_batches import CodecsMissing, require_codecs

    try:
        require_codecs()
    except CodecsMissing as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 1
    stop = probes.stop_event(
        args.probe_port or args.settings.probe_port,
        [("database", probes.database(bootstrap.database_url(args.settings))),
         ("broker", probes.broker(kafka.bootstrap_servers))],
    )  # fmt: skip
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(
        f"consuming {kafka.topic} as group {kafka.group}; Ctrl-C to stop",
        file=sys.stderr,
    )
    # Waits for the database: a consumer may start before it (as `casetrack project` does).
    opened = bootstrap.case_store_when_ready(args.settings, stop)
    if opened is None:
        return 0
    with closing(opened) as store:
        stats = bootstrap.kafka_consumer(store, kafka).run(stop)
    print(
        f"accepted {stats.accepted}, duplicates {stats.duplicates}, rejected {stats.rejected}"
        f" in {stats.batches} batches"
    )
    return 0


def _consumer_settings(args: argparse.Namespace) -> ConsumerSettings:
    """The consumer's settings from the command line's flags."""
    from consumers.kafka.settings import ConsumerSettings

    if args.max_poll_records < 1:
        raise UsageError("--max-poll-records must be at least 1")
    from consumers.kafka.security import KafkaSecurityError

    try:
        secured = security_flags.from_flags(args, args.settings.kafka_env)
    except KafkaSecurityError as e:
        raise UsageError(str(e)) from None
    return ConsumerSettings(
        bootstrap_servers=args.bootstrap_servers,
        topic=args.topic,
        group=args.group,
        dlq_topic=args.dlq_topic,
        max_poll_records=args.max_poll_records,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=max(100, args.session_timeout_ms // 4),
        max_poll_interval_ms=args.max_poll_interval_ms,
        security=secured,
    )


def _status(args: argparse.Namespace, kafka: ConsumerSettings) -> int:
    from kafka.errors import KafkaError

    with closing(bootstrap.case_store(args.settings)) as store:
        try:
            report = bootstrap.kafka_lag(store, kafka)
        except KafkaError as e:
            print(f"casetrack: broker unavailable: {e}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_lag(report)
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

"""Act as the processing systems: publish realistic case flows to a Kafka topic.

Builds on casegen: N cases received over two years, a mix of categories and
outcomes, months between steps in ``occurred_at``, exact duplicates
(redeliveries) and a few poison messages of every kind the consumer must
dead-letter: not JSON, schema violations, unknown types, a transition the
rules reject, and an event for a case never received. The key is the
application number, so one case's events stay in order on one partition;
poison with no readable number has no key.

Usable as a module (``feed`` and ``publish``) or from the shell::

    python -m simulation.kafka_feed --bootstrap-servers 127.0.0.1:9092 --cases 200 --rate 500
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from consumers.kafka import security_flags
from simulation import casegen

if TYPE_CHECKING:
    from consumers.kafka.security import KafkaSecurity

__all__ = ["POISON_KINDS", "feed", "key_for", "poison", "publish"]

RULE_KINDS = ("rejected_transition", "unknown_case")
POISON_KINDS = (*casegen.INVALID_KINDS, *RULE_KINDS)


def feed(
    cases: int,
    seed: int = 1,
    duplicate_share: float = 0.01,
    poison_share: float = 0.005,
) -> list[str]:
    """JSON lines in publishing order; ``poison_share`` of them poison, split over every kind."""
    contract_share = poison_share * len(casegen.INVALID_KINDS) / len(POISON_KINDS)
    lines = casegen.generate(cases, seed, duplicate_share, contract_share)
    if poison_share <= 0 or not lines:
        return lines
    rng = random.Random(f"simulate/{seed}")
    per_kind = max(1, round(poison_share * len(lines) / len(POISON_KINDS)))
    for _ in range(per_kind):
        for kind in RULE_KINDS:
            at, line = _rule_poison(rng, kind, lines)
            lines.insert(at, line)
    return lines


def poison(kind: str, seed: int = 1, lines: Sequence[str] | None = None) -> str:
    """One poison line of ``kind`` (one of POISON_KINDS) about the cases of ``lines``."""
    rng = random.Random(f"simulate/poison/{seed}")
    lines = list(lines) if lines is not None else casegen.generate(3, seed)
    if kind in RULE_KINDS:
        return _rule_poison(rng, kind, lines)[1]
    base = json.loads(next(line for line in lines if '"application.received"' not in line))
    return casegen._poison(rng, kind, base)


def key_for(line: str) -> bytes | None:
    """The application number as the message key; None when the line has no readable one."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    number = event.get("application_number") if isinstance(event, dict) else None
    return number.encode() if isinstance(number, str) and number else None


def publish(
    lines: Sequence[str],
    bootstrap_servers: str,
    topic: str = "case-events",
    *,
    rate: float = 0.0,
    producer: Any = None,
    security: KafkaSecurity | None = None,
) -> dict[int, int]:
    """Publish ``lines`` at ``rate`` messages a second (0: as fast as possible), with
    ``security``'s TLS and SASL (None: plaintext) unless a ``producer`` is given.

    Returns partition -> next offset after the last message published there.
    """
    from kafka import KafkaProducer

    own = producer is None
    if own:
        secured = security.client_config() if security is not None else {}
        producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5, **secured
        )
    ends: dict[int, int] = {}

    def record(metadata: Any) -> None:
        ends[metadata.partition] = max(ends.get(metadata.partition, 0), metadata.offset + 1)

    started = time.monotonic()
    pending = []
    try:
        for sent, line in enumerate(lines):
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            future = producer.send(topic, key=key_for(line), value=line.encode("utf-8"))
            pending.append(future.add_callback(record))
            if len(pending) >= 5000:
                _settle(producer, pending)
        _settle(producer, pending)
    finally:
        if own:
            producer.close(timeout=10)
    return dict(sorted(ends.items()))


def _settle(producer: Any, pending: list[Any]) -> None:
    producer.flush(timeout=30)
    for future in pending:
        future.get(timeout=30)  # raises if the broker refused one
    pending.clear()


def _rule_poison(rng: random.Random, kind: str, lines: list[str]) -> tuple[int, str]:
    """A valid message the rules reject, and where it goes in ``lines``."""
    received = [i for i, line in enumerate(lines) if '"type":"application.received"' in line]
    at = rng.choice(received)
    event = json.loads(lines[at])
    event["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if kind == "rejected_transition":  # approved straight after receipt
        event.update(type="decision.made", payload={"outcome": "approved"})
        return at + 1, json.dumps(event, separators=(",", ":"))
    if kind == "unknown_case":  # an acknowledgement for a number no one received
        known = {json.loads(lines[i])["application_number"] for i in received}
        number = event["application_number"]
        while number in known:
            number = f"F{rng.randrange(100_000_000, 1_000_000_000):09d}"
        event.update(
            type="application.acknowledged",
            application_number=number,
            payload={"acknowledged_on": event["occurred_at"][:10]},
        )
        return rng.randrange(len(lines) + 1), json.dumps(event, separators=(",", ":"))
    raise ValueError(f"unknown poison kind {kind!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", required=True, metavar="HOST:PORT")
    parser.add_argument("--topic", default="case-events")
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.0, help="messages a second (0: no limit)")
    parser.add_argument("--duplicates", type=float, default=0.01, help="share of exact copies")
    parser.add_argument("--poison", type=float, default=0.005, help="share of poison messages")
    security_flags.add_flags(parser)
    args = parser.parse_args(argv)
    from adapters.settings import Settings
    from consumers.kafka.security import KafkaTlsRefused

    try:
        secured = security_flags.from_flags(args, Settings.from_env().kafka_env)
        secured.check_tls(args.bootstrap_servers)
        lines = feed(args.cases, args.seed, args.duplicates, args.poison)
    except (ValueError, KafkaTlsRefused) as e:
        parser.error(str(e))
    started = time.monotonic()
    ends = publish(lines, args.bootstrap_servers, args.topic, rate=args.rate, security=secured)
    print(
        f"published {len(lines)} messages for {args.cases} cases to {args.topic}"
        f" ({len(ends)} partitions) in {time.monotonic() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

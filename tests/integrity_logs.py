"""Logs in memory for the verifier's tests: events rows as the events table holds them
(payloads in eventsourcing's JSON), their event_hashes rows from the writer
(domain.integrity.stored.hash_events) and checkpoints of the Merkle tree at chosen sizes."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

from domain.integrity import merkle
from domain.integrity.stored import HashedEvent, StoredRow, hash_events

TOPICS = (
    "domain.case:Case.Received",
    "domain.case:Case.Acknowledged",
    "domain.case:Case.ActivityChanged",
    "domain.case:Case.DecisionMade",
)
SOURCES = ("gcms", "kafka:case-events/0@17", "file:intake.jsonl:4", "")


def payload(rng: random.Random, version: int) -> bytes:
    """An event's state as eventsourcing stores it: typed values as {"_type_", "_data_"}."""
    recorded = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.getrandbits(40))
    zone = timezone(timedelta(hours=rng.choice((-5, -4, 0, 1, 5.5))))
    occurred = (recorded - timedelta(days=rng.randrange(400))).astimezone(zone)
    state: dict[str, object] = {
        "timestamp": {"_type_": "datetime_iso", "_data_": recorded.isoformat()},
        "event_id": {"_type_": "uuid_hex", "_data_": UUID(int=rng.getrandbits(128)).hex},
        "event_type": rng.choice(("application.received", "medical.passed", "decision.made")),
        "source": rng.choice(SOURCES),
        "occurred_at": {"_type_": "datetime_iso", "_data_": occurred.isoformat()},
    }
    if version == 1:
        state["originator_topic"] = "domain.case:Case"
        state["received_on"] = {"_type_": "date_iso", "_data_": occurred.date().isoformat()}
    if rng.random() < 0.2:
        state["class_version"] = rng.choice((1, 2, 3))
    return json.dumps(state, separators=(",", ":")).encode()


@dataclass
class Log:
    """A log as its two tables hold it, and the checkpoints an auditor kept."""

    events: list[StoredRow]
    hashes: list[HashedEvent]
    checkpoints: list[tuple[int, bytes]] = field(default_factory=list)

    def copy(self) -> Log:
        return Log(list(self.events), list(self.hashes), list(self.checkpoints))

    def checkpoint(self, size: int) -> None:
        """Keep the tree head at `size` (of the stored leaves, which must be sound)."""
        self.checkpoints.append((size, merkle.root([h.leaf for h in self.hashes[:size]])))

    def rehash(self) -> None:
        """Every hash row recomputed from the events as they are now: what an attacker with
        SQL access and the writer's code does after an edit."""
        self.hashes = hash_events(self.events, {}, 0)


def build_log(
    rng: random.Random,
    versions: Sequence[int],
    *,
    checkpoint_sizes: Sequence[int] = (),
    id_step: int = 10,
) -> Log:
    """A log of len(versions) cases, the i-th with versions[i] events, interleaved at random
    (each case in version order). Notification ids go up by `id_step` (room to insert), and
    checkpoints are kept at `checkpoint_sizes` and at the full size."""
    cases = [UUID(int=rng.getrandbits(96) << 32 | i, version=4) for i in range(len(versions))]
    order = [i for i, n in enumerate(versions) for _ in range(n)]
    rng.shuffle(order)
    next_version = [1] * len(versions)
    events = []
    for position, i in enumerate(order):
        version = next_version[i]
        next_version[i] += 1
        events.append(
            StoredRow(
                (position + 1) * id_step,
                cases[i],
                version,
                rng.choice(TOPICS),
                payload(rng, version),
            )
        )
    log = Log(events, hash_events(events, {}, 0))
    for size in sorted({*checkpoint_sizes, len(events)}):
        log.checkpoint(size)
    return log


def forged(row: StoredRow, rng: random.Random, **changes: object) -> StoredRow:
    """Another event in the shape of `row` (a new payload, never the old one), with `changes`
    applied."""
    state = payload(rng, row.case_version)[:-1] + b',"forged":true}'
    return replace(row, state=state, **changes)  # type: ignore[arg-type]

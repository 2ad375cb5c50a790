"""What a run of the Kafka consumer did: shown by the CLI, read by tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from consumers.file_ingest import Summary
from domain.commands import Outcome


@dataclass
class ConsumeStats(Summary):
    """The ingestion outcomes, and what else the loop and the positions met."""

    batches: int = 0
    redelivered: int = 0  # messages below the stored offset, skipped
    database_errors: int = 0
    kafka_errors: int = 0
    beyond_end: int = 0
    log_replaced: int = 0  # partitions whose stored offset belonged to a lost log
    dead_letters_published: int = 0
    undecodable_batches: int = 0

    def add_all(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.add(outcome)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

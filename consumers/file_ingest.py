"""JSON Lines ingestion: validate, append in batches, dead-letter the rest.

Re-running a file after a crash gives the state an uninterrupted run gives:
lines already stored are duplicates by event_id, and lines already
dead-lettered (same origin, line number and content) are not judged again,
so a rule cannot accept on the rerun what it rejected the first time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from consumers.batch import BatchWriter, Message
from consumers.cloud_events import is_cloud_event, parse_cloud_event
from consumers.contract import ContractError, InvalidJson, parse_event
from consumers.ports import IngestStore
from domain.commands import Outcome, RecordCaseEvent

MAX_LINE_BYTES = 1 << 20


@dataclass
class Summary:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0

    def add(self, outcome: Outcome) -> None:
        if outcome is Outcome.ACCEPTED:
            self.accepted += 1
        elif outcome is Outcome.DUPLICATE:
            self.duplicates += 1
        else:
            self.rejected += 1

    def as_dict(self) -> dict[str, int]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def parse_line(
    raw: bytes, headers: Sequence[tuple[str, bytes]] = (), key: bytes | None = None
) -> RecordCaseEvent | ContractError:
    """One message: a v1 envelope, or a CloudEvent (structured, or in the Kafka binary
    mode when ``headers`` carry its attributes; a Kafka ``key`` is its partitionkey);
    a ContractError when it is neither."""
    if len(raw) > MAX_LINE_BYTES:
        return InvalidJson(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        if is_cloud_event(raw, headers):
            return parse_cloud_event(raw, headers, key)
        return parse_event(raw)
    except ContractError as e:
        return e


def ingest_lines(
    lines: Iterable[bytes],
    origin: str,
    store: IngestStore,
    *,
    batch_size: int = 2000,
    on_progress: Callable[[int], None] | None = None,
    writer: BatchWriter | None = None,
) -> Summary:
    """Ingest ``lines`` (numbered from 1; blank lines skipped); ``on_progress`` gets bytes read."""
    writer = writer or BatchWriter(store)
    summary = Summary()
    batch: list[tuple[int, bytes]] = []
    consumed = 0

    def flush() -> None:
        known = store.dead_lettered(origin, batch)
        messages = [
            Message(origin, n, raw, parse_line(raw), already_dead_lettered=n in known)
            for n, raw in batch
        ]
        for outcome in writer.write(messages):
            summary.add(outcome)
        batch.clear()
        if on_progress is not None:
            on_progress(consumed)

    for number, line in enumerate(lines, start=1):
        consumed += len(line)
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        batch.append((number, raw))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return summary

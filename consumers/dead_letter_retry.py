"""Feeding one dead letter in again, after a fix (``casetrack dead-letters retry``).

The message goes through the batch writer as it first came (its bytes and, from
Kafka, its topic, partition, key and headers) under the origin ``retry:<id>``: a dead letter
it makes again is the retry's own, and the first one stays as it was, marked retried.
"""

from __future__ import annotations

from dataclasses import dataclass

from consumers.batch import BatchWriter, Message
from consumers.contract import ContractError
from consumers.file_ingest import parse_line
from consumers.ports import CaseRepository, DeadLetterRetries
from domain.commands import Outcome, RecordCaseEvent


@dataclass(frozen=True)
class Retried:
    """What came of a retry. ``rejection``: the (error kind, reason) of the retry's dead
    letter when it was rejected again (None otherwise, or when none was found)."""

    outcome: Outcome
    parsed: RecordCaseEvent | ContractError
    rejection: tuple[str, str] | None = None


def retry_dead_letter(
    store: CaseRepository, dead_letters: DeadLetterRetries, dead_letter_id: int
) -> Retried | None:
    """Write dead letter ``dead_letter_id``'s message again and mark it retried; None when
    there is no such dead letter."""
    source = dead_letters.retry_source(dead_letter_id)
    if source is None:
        return None
    origin = f"retry:{dead_letter_id}"
    parsed = parse_line(source.raw, source.headers, source.key)
    message = Message(
        origin,
        source.position,
        source.raw,
        parsed,
        topic=source.topic,
        partition=source.partition,
        key=source.key,
        headers=source.headers,
    )
    (outcome,) = BatchWriter(store).write([message])
    newest = dead_letters.mark_retried(dead_letter_id, origin)
    return Retried(outcome, parsed, newest if outcome is Outcome.REJECTED else None)

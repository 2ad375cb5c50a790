"""Applies a batch of inbound messages to their cases and saves it in one transaction.

Shared by every inbound channel. Cases are read in one query per batch and
kept in a bounded cache between batches; a concurrency conflict (another
writer appended first) drops the cached cases and replays the whole batch
against fresh state, so nothing is lost or applied twice.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog

from consumers.contract import ContractError
from consumers.ports import CaseRepository, ConcurrencyConflict, ConsumerOffset, DeadLetter
from domain.application_number import case_id
from domain.case import Case, handle
from domain.catalogue import RECEIVED
from domain.commands import Outcome, RecordCaseEvent
from domain.rules import RuleViolation

log = structlog.get_logger("casetrack.ingest")

# The dead letters' error kinds the writer gives, besides each ContractError's ``kind``.
RULE_VIOLATION = "rule_violation"
CASE_UNREADABLE = "case_unreadable"


@dataclass(frozen=True)
class Message:
    """One inbound message: where it came from, its raw bytes, and what parsing made of it.

    ``position``: a file's line number, or a Kafka offset (with topic, partition, key and
    the record's headers: a CloudEvent in the Kafka binary mode has its attributes there).
    """

    origin: str
    position: int | None
    raw: bytes
    parsed: RecordCaseEvent | ContractError
    already_dead_lettered: bool = False
    topic: str | None = None
    partition: int | None = None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


class BatchWriter:
    MAX_ATTEMPTS = 8

    def __init__(self, store: CaseRepository, cache_size: int = 50_000) -> None:
        self.store = store
        self.cache_size = cache_size
        self._cache: OrderedDict[UUID, Case] = OrderedDict()

    def write(
        self, messages: Sequence[Message], offsets: Sequence[ConsumerOffset] = ()
    ) -> list[Outcome]:
        """Apply and save ``messages`` (and the consumer ``offsets`` they move) atomically."""
        for _attempt in range(self.MAX_ATTEMPTS):
            try:
                return self._write_once(messages, offsets)
            except ConcurrencyConflict:
                log.info("concurrency conflict, replaying batch", size=len(messages))
        raise ConcurrencyConflict(f"batch still conflicting after {self.MAX_ATTEMPTS} attempts")

    def _write_once(
        self, messages: Sequence[Message], offsets: Sequence[ConsumerOffset]
    ) -> list[Outcome]:
        ids = {
            case_id(m.parsed.application_number)
            for m in messages
            if isinstance(m.parsed, RecordCaseEvent)
        }
        cases, fresh, unreadable = self._cases(ids)
        owners = self.store.event_id_owners(
            [m.parsed.event_id for m in messages if isinstance(m.parsed, RecordCaseEvent)]
        )
        erased = self._erased_people(messages)
        touched: dict[UUID, Case] = {}
        dead: list[DeadLetter] = []
        outcomes: list[Outcome] = []
        try:
            for message in messages:
                outcome, letter = self._apply(message, cases, touched, owners, unreadable, erased)
                outcomes.append(outcome)
                if letter is not None:
                    dead.append(letter)
            stale = {
                case_id(d.application_number)
                for d in dead
                if d.application_number and case_id(d.application_number) not in fresh
            }
            if stale:
                # Judged against cached state another writer may have moved on: re-read.
                for cid in stale:
                    self._cache.pop(cid, None)
                raise ConcurrencyConflict("rule violation on cached case; re-reading")
            self.store.save(list(touched.values()), dead, offsets)
        except BaseException:
            for cid in touched:  # their in-memory state holds unsaved events
                self._cache.pop(cid, None)
            raise
        self._remember(cases)
        log.debug(
            "batch written",
            messages=len(messages),
            accepted=outcomes.count(Outcome.ACCEPTED),
            duplicates=outcomes.count(Outcome.DUPLICATE),
            rejected=outcomes.count(Outcome.REJECTED),
        )
        return outcomes

    def _apply(
        self,
        message: Message,
        cases: dict[UUID, Case],
        touched: dict[UUID, Case],
        owners: dict[UUID, UUID],
        unreadable: dict[UUID, Exception],
        erased: set[str],
    ) -> tuple[Outcome, DeadLetter | None]:
        parsed = message.parsed
        if message.already_dead_lettered:
            return Outcome.REJECTED, None
        if isinstance(parsed, ContractError):
            log.warning("rejected", line=message.position, error=parsed.kind, field=parsed.field)
            return Outcome.REJECTED, _dead_letter(
                message, parsed.kind, str(parsed), field=parsed.field
            )
        cid = case_id(parsed.application_number)
        if cid in unreadable:
            # A corrupt stored row: the message waits, raw, for a retry after the repair.
            error = type(unreadable[cid]).__name__
            log.error(
                "rejected: stored case unreadable",
                application_number=parsed.application_number,
                event_id=str(parsed.event_id),
                line=message.position,
                error=error,
            )
            return Outcome.REJECTED, _dead_letter(
                message,
                CASE_UNREADABLE,
                f"the case's stored events cannot be read ({error}); retry after their repair",
                application_number=parsed.application_number,
                event_id=parsed.event_id,
            )
        try:
            if owners.get(parsed.event_id, cid) != cid:
                raise RuleViolation(
                    "event_id_reused",
                    parsed.type,
                    "the event_id belongs to an event of another case",
                )
            if erased and cid not in cases and set(_people(parsed)) & erased:
                raise RuleViolation(
                    "personal_data_erased",
                    parsed.type,
                    "a person on this file had their personal data erased; an operator must"
                    " lift the tombstone (`casetrack privacy lift`) before a new file for them",
                )
            case, outcome = handle(cases.get(cid), parsed)
        except RuleViolation as e:
            # Its raw bytes would bring back the data of a person erased on this file.
            drop_raw = e.rule == "personal_data_erased" or bool(
                getattr(cases.get(cid), "erased", ())
            )
            log.warning(
                "rejected",
                application_number=parsed.application_number,
                event_id=str(parsed.event_id),
                line=message.position,
                error=RULE_VIOLATION,
                rule=e.rule,
            )
            return Outcome.REJECTED, _dead_letter(
                message,
                RULE_VIOLATION,
                str(e),
                rule=e.rule,
                application_number=parsed.application_number,
                event_id=parsed.event_id,
                raw_dropped=drop_raw,
            )
        cases[cid] = case
        if outcome is Outcome.ACCEPTED:
            touched[cid] = case
            owners[parsed.event_id] = cid
        log.debug(
            outcome.value,
            application_number=parsed.application_number,
            event_id=str(parsed.event_id),
            line=message.position,
            type=parsed.type,
        )
        return outcome, None

    def _erased_people(self, messages: Sequence[Message]) -> set[str]:
        """The tombstoned people among those of the batch's application.received."""
        people = [
            p for m in messages if isinstance(m.parsed, RecordCaseEvent) for p in _people(m.parsed)
        ]
        return self.store.erased_people(people) if people else set()

    def _cases(self, ids: set[UUID]) -> tuple[dict[UUID, Case], set[UUID], dict[UUID, Exception]]:
        """The batch's cases, which of them were read from the store just now, and
        those whose stored events cannot be read (with the error)."""
        found = {cid: self._cache[cid] for cid in ids if cid in self._cache}
        missing = [cid for cid in ids if cid not in found]
        loaded, unreadable = self.store.load_readable(missing)
        found.update(loaded)
        return found, set(missing), unreadable

    def _remember(self, cases: dict[UUID, Case]) -> None:
        for cid, case in cases.items():
            self._cache[cid] = case
            self._cache.move_to_end(cid)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _people(command: RecordCaseEvent) -> list[str]:
    """Who an application.received brings (none for other events): the UCIs of its
    applicant and sponsor, its representative's email."""
    if command.type != RECEIVED:
        return []
    people = [
        str(party["uci"])
        for role in ("principal_applicant", "sponsor")
        if isinstance(party := command.payload.get(role), dict) and party.get("uci")
    ]
    representative = command.payload.get("representative")
    if isinstance(representative, dict) and representative.get("email"):
        people.append(str(representative["email"]))
    return people


def _dead_letter(message: Message, kind: str, reason: str, **details: Any) -> DeadLetter:
    return DeadLetter(
        origin=message.origin,
        position=message.position,
        raw=message.raw,
        error_kind=kind,
        reason=reason,
        topic=message.topic,
        partition=message.partition,
        key=message.key,
        headers=message.headers,
        **details,
    )

"""Properties of the case event log: replay, idempotency, rejection, batching.

The pure-domain properties need no database. The others ingest random
histories into PostgreSQL, each example on a schema of its own, and compare
what was stored with an in-memory replay of the same lines through
``domain.case.handle`` (``strategies.replay``).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.event_store import CaseStore
from consumers.batch import BatchWriter
from consumers.contract import ContractError, parse_event
from consumers.file_ingest import Summary, ingest_lines
from domain.case import Case, handle
from domain.commands import Outcome, RecordCaseEvent
from domain.rules import RuleViolation
from tests.property.strategies import (
    DB,
    History,
    Replay,
    case_states,
    commands,
    contract_invalid_lines,
    dead_letter_rows,
    event_fields,
    event_rows,
    examples,
    histories,
    noisy_histories,
    replay,
    reused_id_histories,
    rule_breaking_lines,
    state_of,
    stored_event_ids,
)
from tests.stores import scratch_store

PURE = settings(
    max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
batch_sizes = st.integers(1, 50)


def summary_of(outcomes: list[Outcome]) -> dict[str, int]:
    counts = Counter(outcomes)
    return {
        "accepted": counts[Outcome.ACCEPTED],
        "duplicates": counts[Outcome.DUPLICATE],
        "rejected": counts[Outcome.REJECTED],
    }


def snapshot(case: Case) -> tuple[dict[str, Any], int]:
    """A deep copy of the case's state and how many events it has not saved yet."""
    return copy.deepcopy(state_of(case)), len(case.pending_events)


# ---------------------------------------------------------------- pure domain


@PURE
@given(history=histories())
def test_reapplying_an_accepted_command_is_a_duplicate(history: History) -> None:
    """At every point of a history, every command the case accepted so far is a no-op."""
    cases: dict[str, Case] = {}
    accepted: dict[str, list[RecordCaseEvent]] = {}
    for command in commands(history.lines):
        number = command.application_number
        try:
            case, outcome = handle(cases.get(number), command)
        except RuleViolation:
            continue
        cases[number] = case
        if outcome is Outcome.ACCEPTED:
            accepted.setdefault(number, []).append(command)
        before = snapshot(case)
        for earlier in accepted.get(number, []):
            same, again = handle(case, earlier)
            assert again is Outcome.DUPLICATE, earlier
            assert same is case
            assert len(case.pending_events) == before[1]
        assert snapshot(case) == before


@PURE
@given(history=histories(), data=st.data())
def test_a_rule_violation_leaves_the_case_unchanged(history: History, data: st.DataObject) -> None:
    """Every rejected command, in the history and after it, leaves state and version alone."""
    cases: dict[str, Case] = {}

    def apply(command: RecordCaseEvent) -> bool:
        case = cases.get(command.application_number)
        before = snapshot(case) if case is not None else None
        try:
            cases[command.application_number], _ = handle(case, command)
        except RuleViolation:
            if case is not None:
                assert snapshot(case) == before, command
            return False
        return True

    for command in commands(history.lines):
        apply(command)
    extra = data.draw(st.lists(rule_breaking_lines(cases), min_size=1, max_size=10))
    for raw in extra:
        assert not apply(parse_event(raw)), raw  # each was built to be rejected


@PURE
@given(history=histories())
def test_pending_events_replay_to_the_same_case(history: History) -> None:
    """The events an aggregate raised rebuild it exactly (the log is the state)."""
    model = replay(history.lines)
    for case in model.cases.values():
        rebuilt = None
        for event in case.pending_events:
            rebuilt = event.mutate(rebuilt)
        assert rebuilt is not None
        assert state_of(rebuilt) == state_of(case)
        assert [e.event_id for e in case.pending_events] == model.accepted[case.application_number]


# ---------------------------------------------------------------- with PostgreSQL


@contextmanager
def ingested(
    database_url: str, history: History, batch_size: int
) -> Iterator[tuple[CaseStore, Replay]]:
    """``history`` ingested in batches of ``batch_size`` into a fresh store, and replayed in
    memory: the summary and the dead-lettered lines already checked against the replay."""
    model = replay(history.lines)
    with scratch_store(database_url) as store:
        summary = ingest_lines(list(history.lines), "history.jsonl", store, batch_size=batch_size)
        assert summary.as_dict() == summary_of(model.outcomes)
        assert [d["position"] for d in dead_letter_rows(store)] == model.rejected_lines
        yield store, model


@DB
@given(history=noisy_histories(), batch_size=batch_sizes)
def test_histories_replay_from_the_store_to_the_in_memory_state(
    database_url: str, history: History, batch_size: int
) -> None:
    with ingested(database_url, history, batch_size) as (store, model):
        assert case_states(store, history.application_numbers) == {
            number: state_of(case) for number, case in model.cases.items()
        }
        assert stored_event_ids(store, history.application_numbers) == model.accepted
        for case in model.cases.values():  # every field survives the round trip
            assert [event_fields(e) for e in store.stored_events(case.id)] == [
                event_fields(e) for e in case.pending_events
            ]


@DB
@given(history=reused_id_histories(), batch_size=batch_sizes)
def test_an_event_id_names_one_event_of_one_case(
    database_url: str, history: History, batch_size: int
) -> None:
    """Reused on another case, an event_id is rejected (to the dead letters), in any batching."""
    with ingested(database_url, history, batch_size) as (store, model):
        stored = stored_event_ids(store, history.application_numbers)
        assert stored == model.accepted
        every_id = [event_id for ids in stored.values() for event_id in ids]
        assert len(every_id) == len(set(every_id))


@settings(DB, max_examples=examples(15))
@given(history=histories(max_cases=6), data=st.data())
def test_duplicates_and_redeliveries_never_add_events(
    database_url: str, history: History, data: st.DataObject
) -> None:
    model = replay(history.lines)
    lines = list(history.lines)
    with scratch_store(database_url) as store:
        writer = BatchWriter(store)
        ingest_lines(lines, "feed.jsonl", store, batch_size=data.draw(batch_sizes), writer=writer)
        events = event_rows(store)
        states = case_states(store, history.application_numbers)
        letters = dead_letter_rows(store)

        def unchanged() -> None:
            assert event_rows(store) == events
            assert case_states(store, history.application_numbers) == states
            assert dead_letter_rows(store) == letters

        # The same file again (a rerun after a crash): nothing new, nothing judged twice.
        rerun = ingest_drawn(data, lines, "feed.jsonl", store, writer)
        rejected = len(model.rejected_lines)
        assert rerun.as_dict() == {
            "accepted": 0,
            "duplicates": len(lines) - rejected,
            "rejected": rejected,
        }
        unchanged()

        # Redeliveries of stored events, any order, repeated, through another channel.
        stored = {(c.application_number, c.event_id) for c in commands(lines)} & {
            (number, event_id) for number, ids in model.accepted.items() for event_id in ids
        }
        redeliverable = [
            raw
            for raw in lines
            if (c := parse_event_or_none(raw)) and (c.application_number, c.event_id) in stored
        ]
        if redeliverable:
            sample = data.draw(st.lists(st.sampled_from(redeliverable), min_size=1, max_size=40))
            again = ingest_drawn(data, sample, "redelivery.kafka", store, writer)
            assert again.as_dict() == {"accepted": 0, "duplicates": len(sample), "rejected": 0}
            unchanged()


def ingest_drawn(
    data: st.DataObject, lines: Sequence[bytes], origin: str, store: CaseStore, writer: BatchWriter
) -> Summary:
    """``lines`` ingested in batches of a drawn size, through ``writer`` (its cache warm
    from earlier batches) or a new writer, as drawn."""
    batch_size = data.draw(batch_sizes)
    same_writer = data.draw(st.booleans())
    return ingest_lines(
        lines, origin, store, batch_size=batch_size, writer=writer if same_writer else None
    )


def parse_event_or_none(raw: bytes) -> RecordCaseEvent | None:
    try:
        return parse_event(raw)
    except ContractError:
        return None


@DB
@given(history=histories(max_cases=5), data=st.data())
def test_invalid_events_never_change_state(
    database_url: str, history: History, data: st.DataObject
) -> None:
    model = replay(history.lines)
    poison = data.draw(
        st.lists(
            st.one_of(
                contract_invalid_lines(history.application_numbers),
                rule_breaking_lines(model.cases),
            ),
            min_size=1,
            max_size=25,
        )
    )
    # The strategies' promise, checked against the in-memory model first.
    assert replay([*history.lines, *poison]).outcomes[len(history.lines) :] == [
        Outcome.REJECTED
    ] * len(poison)

    with scratch_store(database_url) as store:
        writer = BatchWriter(store)
        ingest_lines(history.lines, "feed.jsonl", store, batch_size=50, writer=writer)
        events = event_rows(store)
        states = case_states(store, history.application_numbers)

        summary = ingest_drawn(data, poison, "poison.jsonl", store, writer)

        assert summary.as_dict() == {"accepted": 0, "duplicates": 0, "rejected": len(poison)}
        assert event_rows(store) == events
        assert case_states(store, history.application_numbers) == states
        letters = dead_letter_rows(store, "poison.jsonl")
        assert [d["position"] for d in letters] == list(range(1, len(poison) + 1))
        for letter, raw in zip(letters, poison, strict=True):
            assert letter["raw"] == raw
            assert letter["reason"]
            parsed = parse_event_or_none(raw)
            if parsed is None:
                assert letter["error_kind"] != "rule_violation"
            else:
                assert letter["error_kind"] == "rule_violation"
                assert letter["rule"]
                assert letter["application_number"] == parsed.application_number
                assert letter["event_id"] == parsed.event_id


@settings(DB, max_examples=examples(10))
@given(history=noisy_histories(max_cases=5, max_events=12), batch_size=st.integers(2, 60))
def test_batch_size_does_not_matter(database_url: str, history: History, batch_size: int) -> None:
    lines = list(history.lines)
    results = []
    for size in (1, batch_size):
        with scratch_store(database_url) as store:
            summary = ingest_lines(lines, "feed.jsonl", store, batch_size=size)
            results.append(
                (
                    summary.as_dict(),
                    stored_event_ids(store, history.application_numbers),
                    [
                        (d["position"], d["error_kind"], d["rule"], d["field"])
                        for d in dead_letter_rows(store)
                    ],
                )
            )
    assert results[0] == results[1]

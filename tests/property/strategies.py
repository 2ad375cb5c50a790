"""Hypothesis strategies: random case histories as JSON lines of contract v1.

A history is several cases (1-8), each a random sequence of event types drawn
from the whole catalogue. Most steps are *sensible*: the next type is drawn from
the types the case would accept right now (found by asking ``domain.rules`` on
a scratch aggregate built with ``domain.case.handle``), often the ones that move
the case towards approval. The rest are random types (usually rejected) and
exact redeliveries of earlier lines. The lines of the cases are interleaved at
random, keeping each case's own order.

Also here: the in-memory model the properties compare the product against
(``replay``), strategies for contract-invalid lines and for valid-looking lines
that the rules reject, ``state_of`` (the meaningful state of a Case), the settings
of the properties checked on PostgreSQL (``DB``) and readers of what they stored.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid5

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from adapters.postgres.event_store import CaseStore
from consumers.contract import ContractError, parse_event
from domain import catalogue as t
from domain import rules
from domain.activities import Activity
from domain.application_number import case_id
from domain.case import Case, handle
from domain.commands import Outcome, RecordCaseEvent
from domain.rules import RuleViolation
from tests.stores import rows


def examples(n: int) -> int:
    """``n`` scaled by CASETRACK_PROPERTY_SCALE (e.g. 10 for a long bug hunt; default 1)."""
    return max(1, round(n * float(os.environ.get("CASETRACK_PROPERTY_SCALE", "1"))))


# The settings of properties checked on PostgreSQL (slow examples, each on a schema of
# its own): no deadline, fewer examples.
DB = settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


_EVENT_IDS = UUID("0b7a3f4e-9a51-4c1f-8f0e-3c2d1b0a9e87")

TIMEZONES = (
    UTC,
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=-8)),
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-3, minutes=-30)),
)
SOURCES = ("gcms", "gcms-batch", "ircc.portal", "vac_biometrics")
DOCUMENT_CODES = (
    "passport_copy",
    "police_certificate",
    "marriage_certificate",
    "birth_certificate",
    "photos",
    "proof_of_relationship",
)
ACTIVITY_TYPES = tuple(x for x in t.EVENT_TYPES if x.split(".")[0] in set(Activity))

# Types that move a case towards approval (and on after it); sensible steps prefer them.
PROGRESS = frozenset(
    {
        t.ACKNOWLEDGED,
        "sponsor_eligibility.started",
        "sponsor_eligibility.met",
        "eligibility.started",
        "eligibility.met",
        "biometrics.requested",
        "biometrics.completed",
        "biometrics.exempted",
        "medical.requested",
        "medical.passed",
        "medical.exempted",
        "background_check.started",
        "background_check.completed",
        t.INTERVIEW_COMPLETED,
        t.DECISION_MADE,
        t.COPR_ISSUED,
        t.PASSPORT_REQUESTED,
    }
)

# ---------------------------------------------------------------- building blocks

# Built from few integer draws each: generating hundreds of events per example stays cheap.
application_numbers = st.builds(
    "{}{:09d}".format, st.sampled_from(string.ascii_uppercase), st.integers(0, 999_999_999)
)


def _days_from(start: date, end: date) -> st.SearchStrategy[date]:
    return st.integers(0, (end - start).days).map(lambda n: start + timedelta(days=n))


dates = _days_from(date(2018, 1, 1), date(2030, 12, 31))
birth_dates = _days_from(date(1900, 1, 1), date(2006, 12, 31))
_EPOCH = datetime(2018, 1, 1, tzinfo=UTC)
aware_datetimes = st.builds(
    lambda micros, tz: (_EPOCH + timedelta(microseconds=micros)).astimezone(tz),
    st.integers(0, 13 * 365 * 86_400 * 1_000_000),
    st.sampled_from(TIMEZONES),
)
NAMES = (
    "Priya", "Wei", "Sofía", "José", "Élodie", "Chloé", "Ngozi", "Ji-woo", "Nguyen Van",
    "Côté", "O'Brien", "Hernández", "Dela Cruz", "Kowalski", "Łukasz", "Øyvind", "Zoë",
)  # fmt: skip
names = st.one_of(
    st.sampled_from(NAMES),
    st.text(st.characters(categories=["Lu", "Ll"], max_codepoint=0x2FF), min_size=1, max_size=12),
)
texts = st.one_of(
    st.sampled_from(("Receipt of application", "Request for documents", "Décision", "  padded  ")),
    st.text(
        st.characters(categories=["L", "N", "P", "Zs"], max_codepoint=0x2FF),
        min_size=1,
        max_size=30,
    ).filter(lambda s: s.strip() != ""),
)
emails = st.builds(
    "{}{}@{}".format,
    st.sampled_from(("a", "jo.smith", "x_y", "pat")),
    st.integers(0, 999),
    st.sampled_from(("example.com", "example.ca", "courriel.example.org")),
)
ucis = st.one_of(
    st.integers(0, 10**8 - 1).map("{:08d}".format),
    st.integers(0, 10**10 - 1).map("{:010d}".format),
)
document_lists = st.lists(st.sampled_from(DOCUMENT_CODES), min_size=1, max_size=4, unique=True)


@st.composite
def people(draw: st.DrawFn) -> dict[str, Any]:
    person = {
        "uci": draw(ucis),
        "given_name": draw(names),
        "family_name": draw(names),
        "date_of_birth": draw(birth_dates).isoformat(),
    }
    if draw(st.booleans()):
        person["email"] = draw(emails)
    return person


@st.composite
def representatives(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    rep: dict[str, Any] = {"name": draw(names), "email": draw(emails)}
    if draw(st.booleans()):
        rep["membership_id"] = draw(st.sampled_from(("R123", "CICC-R700123", "ABC-1")))
    return rep


@st.composite
def payloads(
    draw: st.DrawFn, event_type: str, case: Case | None = None, sensible: bool = False
) -> dict[str, Any]:
    """A contract-valid payload for ``event_type``.

    With ``sensible`` the payload suits ``case``: documents received are ones it
    requested, a decision is an approval when the case allows one.
    """
    if event_type == t.RECEIVED:
        payload: dict[str, Any] = {
            "category": draw(st.sampled_from(t.CATEGORIES)),
            "received_on": draw(dates).isoformat(),
            "principal_applicant": draw(people()),
            "sponsor": draw(people()),
        }
        rep = draw(representatives())
        if rep is not None:
            payload["representative"] = rep
        if draw(st.booleans()):
            payload["preferred_language"] = draw(st.sampled_from(t.LANGUAGES))
        return payload
    if event_type == t.ACKNOWLEDGED:
        return {"acknowledged_on": draw(dates).isoformat()}
    if event_type.endswith(".requested") and event_type in ACTIVITY_TYPES:
        return {"due_on": draw(dates).isoformat()}
    if event_type in (
        "biometrics.completed",
        "background_check.completed",
        "medical.passed",
        "medical.failed",
    ):
        return _optional(draw, "completed_on", dates)
    if event_type == t.DOCUMENTS_REQUESTED:
        return {"documents": draw(document_lists), "due_on": draw(dates).isoformat()}
    if event_type == t.DOCUMENTS_RECEIVED:
        if sensible and case is not None and case.documents_requested:
            open_ = sorted(case.documents_requested)
            docs = draw(st.lists(st.sampled_from(open_), min_size=1, unique=True))
        else:
            docs = draw(document_lists)
        return {"documents": docs}
    if event_type == t.INTERVIEW_SCHEDULED:
        return {"scheduled_for": draw(aware_datetimes).isoformat()}
    if event_type == t.DECISION_MADE:
        if sensible and case is not None:
            allowed = [o for o in t.DECISION_OUTCOMES if _accepts(case, event_type, {"outcome": o})]
            outcome = "approved" if "approved" in allowed else draw(st.sampled_from(allowed))
        else:
            outcome = draw(st.sampled_from(t.DECISION_OUTCOMES))
        return {"outcome": outcome, **_optional(draw, "decided_on", dates)}
    if event_type == t.COPR_ISSUED:
        return _optional(draw, "issued_on", dates)
    if event_type == t.PASSPORT_REQUESTED:
        return _optional(draw, "due_on", dates)
    if event_type == t.CORRESPONDENCE_SENT:
        return {"subject": draw(texts)}
    return {}


def _optional(draw: st.DrawFn, name: str, strategy: st.SearchStrategy[date]) -> dict[str, Any]:
    """An optional field: absent, explicitly null, or a value."""
    how = draw(st.sampled_from(("absent", "null", "value")))
    if how == "absent":
        return {}
    return {name: None if how == "null" else draw(strategy).isoformat()}


def event_dict(
    event_id: UUID,
    event_type: str,
    application_number: str,
    occurred_at: datetime,
    source: str,
    payload: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "event_id": str(event_id),
        "schema_version": 1,
        "type": event_type,
        "application_number": application_number,
        "occurred_at": occurred_at.isoformat(),
        "source": source,
        "payload": dict(payload),
    }


def encode(event: Any) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


# ---------------------------------------------------------------- the in-memory model


def _accepts(case: Case, event_type: str, payload: Mapping[str, Any]) -> bool:
    try:
        rules.check(case, event_type, payload)
    except RuleViolation:
        return False
    return True


def acceptable_types(case: Case) -> list[str]:
    """Types (other than application.received) the case accepts now, for some payload."""
    found = []
    for event_type in t.EVENT_TYPES[1:]:
        if event_type == t.DOCUMENTS_RECEIVED:
            probes: list[dict[str, Any]] = [{"documents": sorted(case.documents_requested)}]
            if not case.documents_requested:
                continue
        elif event_type == t.DECISION_MADE:
            probes = [{"outcome": o} for o in t.DECISION_OUTCOMES]
        else:
            probes = [{}]
        if any(_accepts(case, event_type, p) for p in probes):
            found.append(event_type)
    return found


@dataclass
class Replay:
    """What applying lines in order to in-memory aggregates gives.

    Lines are numbered from 1 as in a file; a line's terminator is not part of
    it, and blank lines are skipped (they get a number but no outcome).
    """

    cases: dict[str, Case] = field(default_factory=dict)
    accepted: dict[str, list[UUID]] = field(default_factory=dict)
    owners: dict[UUID, str] = field(default_factory=dict)  # event_id -> its case
    outcomes: list[Outcome] = field(default_factory=list)  # one per non-blank line
    rejected_lines: list[int] = field(default_factory=list)
    lines_read: int = 0

    def apply(self, line: bytes) -> Outcome | None:
        self.lines_read += 1
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            return None
        try:
            command = parse_event(raw)
        except ContractError:
            return self._record(Outcome.REJECTED)
        number = command.application_number
        if self.owners.get(command.event_id, number) != number:
            return self._record(Outcome.REJECTED)  # an event_id names one case's event
        try:
            case, outcome = handle(self.cases.get(number), command)
        except RuleViolation:
            return self._record(Outcome.REJECTED)
        self.cases[number] = case
        if outcome is Outcome.ACCEPTED:
            self.accepted.setdefault(number, []).append(command.event_id)
            self.owners[command.event_id] = number
        return self._record(outcome)

    def _record(self, outcome: Outcome) -> Outcome:
        self.outcomes.append(outcome)
        if outcome is Outcome.REJECTED:
            self.rejected_lines.append(self.lines_read)
        return outcome


def replay(lines: Iterable[bytes]) -> Replay:
    model = Replay()
    for raw in lines:
        model.apply(raw)
    return model


IGNORED_ATTRIBUTES = frozenset({"_pending_events", "_created_on", "_modified_on"})


def state_of(case: Case) -> dict[str, Any]:
    """Everything a case knows except recording timestamps and unsaved events."""
    return {k: v for k, v in vars(case).items() if k not in IGNORED_ATTRIBUTES}


def event_fields(event: Case.Event) -> dict[str, Any]:
    """An event's fields, its class and datetimes with their offsets; not when it was recorded."""
    fields = {k: v for k, v in vars(event).items() if k != "timestamp"}
    return {
        "class": type(event).__qualname__,
        **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()},
    }


# ---------------------------------------------------------------- histories


@dataclass(frozen=True)
class History:
    lines: tuple[bytes, ...]
    application_numbers: tuple[str, ...]

    def __repr__(self) -> str:  # readable falsifying examples
        body = "\n".join(f"  {n:>3}: {raw!r}," for n, raw in enumerate(self.lines, 1))
        return f"History(cases={list(self.application_numbers)}, lines=\n{body})"


def _chance(draw: st.DrawFn, percent: int) -> bool:
    """True with about ``percent``% probability; shrinks towards True."""
    return draw(st.integers(0, 99)) < percent


@st.composite
def case_lines(draw: st.DrawFn, application_number: str, max_events: int = 16) -> list[bytes]:
    """One case's lines in order: mostly accepted, some rejected, a few redeliveries."""
    count = draw(st.integers(1, max_events))
    # A driven case mostly takes steps towards approval, so some get there.
    drive = 92 if _chance(draw, 40) else 55
    case: Case | None = None
    lines: list[bytes] = []
    for index in range(count):
        if lines and not _chance(draw, 94):
            raw = draw(st.sampled_from(lines))  # an exact redelivery of an earlier line
        else:
            event_type, sensible = _next_type(draw, case, drive)
            raw = encode(
                event_dict(
                    uuid5(_EVENT_IDS, f"{application_number}:{index}"),
                    event_type,
                    application_number,
                    draw(aware_datetimes),
                    draw(st.sampled_from(SOURCES)),
                    draw(payloads(event_type, case, sensible)),
                )
            )
        lines.append(raw)
        command = parse_event(raw)  # a strategy bug if this raises
        with suppress(RuleViolation):
            case, _ = handle(case, command)
    return lines


def _next_type(draw: st.DrawFn, case: Case | None, drive: int) -> tuple[str, bool]:
    """The next event type, and whether it is a sensible (state-aware) pick."""
    if _chance(draw, 82):
        if case is None:
            return t.RECEIVED, True
        choices = acceptable_types(case)
        approvable = _accepts(case, t.DECISION_MADE, {"outcome": "approved"})
        progress = [c for c in choices if c in PROGRESS and (c != t.DECISION_MADE or approvable)]
        if progress and _chance(draw, drive):
            return draw(st.sampled_from(progress)), True
        # Closing a case early ends its story: do it rarely.
        open_ = [c for c in choices if c not in (t.DECISION_MADE, t.WITHDRAWN) or approvable]
        if open_ and _chance(draw, 90):
            return draw(st.sampled_from(open_)), True
        if choices:
            return draw(st.sampled_from(choices)), True
    return draw(st.sampled_from(t.EVENT_TYPES)), False


@st.composite
def histories(
    draw: st.DrawFn, min_cases: int = 1, max_cases: int = 8, max_events: int = 16
) -> History:
    numbers = draw(
        st.lists(application_numbers, min_size=min_cases, max_size=max_cases, unique=True)
    )
    scripts = [draw(case_lines(number, max_events)) for number in numbers]
    order = draw(st.permutations([i for i, script in enumerate(scripts) for _ in script]))
    position = [0] * len(scripts)
    lines = []
    for i in order:
        lines.append(scripts[i][position[i]])
        position[i] += 1
    return History(tuple(lines), tuple(numbers))


# ---------------------------------------------------------------- invalid lines


def _one_line(raw: bytes) -> bytes:
    return raw.replace(b"\n", b"\\n").replace(b"\r", b"\\r")


bad_json_lines = st.one_of(
    st.text(min_size=1, max_size=60).map(str.encode).map(_one_line),
    st.binary(min_size=1, max_size=60).map(_one_line),
    st.sampled_from(
        [b"{", b"[]", b"null", b"42", b'"an event"', b"{'type': 'x'}", b"\xff\xfe{}", b"{}}"]
    ),
).filter(lambda raw: raw.strip() != b"")

# Payload fields every one of these types requires.
REQUIRED_PAYLOAD = {
    t.RECEIVED: "category",
    t.ACKNOWLEDGED: "acknowledged_on",
    "biometrics.requested": "due_on",
    "medical.requested": "due_on",
    t.DOCUMENTS_REQUESTED: "documents",
    t.DOCUMENTS_RECEIVED: "documents",
    t.INTERVIEW_SCHEDULED: "scheduled_for",
    t.DECISION_MADE: "outcome",
    t.CORRESPONDENCE_SENT: "subject",
}
BAD_PAYLOAD_VALUES: dict[str, tuple[str, Sequence[Any]]] = {
    t.DECISION_MADE: ("outcome", ["maybe", "APPROVED", None, 1]),
    t.DOCUMENTS_REQUESTED: ("documents", [[], ["Passport"], ["x"], "passport_copy", [1]]),
    t.DOCUMENTS_RECEIVED: ("documents", [[], ["has space"], None]),
    t.ACKNOWLEDGED: ("acknowledged_on", ["yesterday", "2024-13-01", None]),
    "medical.requested": ("due_on", ["soon", None, "2024-02-30"]),
    t.INTERVIEW_SCHEDULED: ("scheduled_for", ["2024-05-01T10:00:00", "2024-05-01", "noon"]),
    t.CORRESPONDENCE_SENT: ("subject", ["", "   ", "x" * 201, None]),
    t.RECEIVED: ("category", ["sibling", "", None]),
}
ENVELOPE_FIELDS = ("event_id", "application_number", "occurred_at", "source", "payload", "type")
BAD_ENVELOPE_VALUES: dict[str, Sequence[Any]] = {
    "event_id": ["not-a-uuid", "1234", "", None],
    "application_number": [
        "f000000001",
        "F00000001",
        "F0000000001",
        "FF00000001",
        "F00000000\u0661",
        " F000000001",
        "",
        123456789,
        None,
    ],
    "occurred_at": ["2024-01-01T10:00:00", "2024-01-01", "yesterday", None],
    "source": ["has space", "", "x" * 65, "caf\u00e9", None],
    "schema_version": [2, 0, "1", True, None],
    "type": ["medical.started", "application.reopened", "APPLICATION.RECEIVED", "", 42, None],
    "payload": [[], "payload", None, 1],
}


@st.composite
def valid_events(draw: st.DrawFn, numbers: Sequence[str] = ()) -> dict[str, Any]:
    """A contract-valid event (as a dict) of any type, for a known or new case."""
    number = draw(st.sampled_from(numbers)) if numbers and draw(st.booleans()) else None
    event_type = draw(st.sampled_from(t.EVENT_TYPES))
    return event_dict(
        draw(st.uuids()),
        event_type,
        number or draw(application_numbers),
        draw(aware_datetimes),
        draw(st.sampled_from(SOURCES)),
        draw(payloads(event_type)),
    )


@st.composite
def bad_field_lines(draw: st.DrawFn, numbers: Sequence[str] = ()) -> bytes:
    """A valid event with one thing made invalid."""
    event = draw(valid_events(numbers))
    how = draw(
        st.sampled_from(
            (
                "drop_envelope",
                "bad_envelope",
                "extra_envelope",
                "extra_payload",
                "drop_payload",
                "bad_payload",
                "bad_person",
            )
        )
    )
    if how == "drop_envelope":
        del event[draw(st.sampled_from((*ENVELOPE_FIELDS, "schema_version")))]
    elif how == "bad_envelope":
        name = draw(st.sampled_from(sorted(BAD_ENVELOPE_VALUES)))
        event[name] = draw(st.sampled_from(BAD_ENVELOPE_VALUES[name]))
    elif how == "extra_envelope":
        event[draw(st.sampled_from(("extra", "timestamp", "version")))] = "x"
    elif how == "extra_payload":
        event["payload"]["unexpected_field"] = draw(st.sampled_from(("x", 1, None, [])))
    elif how == "drop_payload":
        event_type = draw(st.sampled_from(sorted(REQUIRED_PAYLOAD)))
        event["type"] = event_type
        event["payload"] = draw(payloads(event_type))
        del event["payload"][REQUIRED_PAYLOAD[event_type]]
    elif how == "bad_payload":
        event_type = draw(st.sampled_from(sorted(BAD_PAYLOAD_VALUES)))
        name, values = BAD_PAYLOAD_VALUES[event_type]
        event["type"] = event_type
        event["payload"] = {**draw(payloads(event_type)), name: draw(st.sampled_from(values))}
    else:
        event["type"] = t.RECEIVED
        event["payload"] = draw(payloads(t.RECEIVED))
        who = draw(st.sampled_from(("principal_applicant", "sponsor")))
        name, value = draw(
            st.sampled_from(
                (
                    ("uci", "123"),
                    ("uci", "123456789"),
                    ("date_of_birth", "2999-01-01"),
                    ("date_of_birth", "1899-12-31"),
                    ("email", "not-an-email"),
                    ("given_name", ""),
                )
            )
        )
        event["payload"][who] = {**event["payload"][who], name: value}
    return encode(event)


def contract_invalid_lines(numbers: Sequence[str] = ()) -> st.SearchStrategy[bytes]:
    """Lines that fail contract v1: not JSON, not an object, unknown type, bad fields."""
    return st.one_of(bad_json_lines, bad_field_lines(numbers))


def rejected_probes(case: Case) -> list[tuple[str, dict[str, Any]]]:
    """(type, payload) pairs, valid under the contract, that ``case`` rejects now."""
    found: list[tuple[str, dict[str, Any]]] = [(t.RECEIVED, {})]  # already received
    for event_type in t.EVENT_TYPES[1:]:
        if event_type == t.DECISION_MADE:
            probes = [{"outcome": o} for o in t.DECISION_OUTCOMES]
        elif event_type == t.DOCUMENTS_RECEIVED:
            unrequested = [d for d in DOCUMENT_CODES if d not in case.documents_requested]
            probes = [{"documents": unrequested[:1]}] if unrequested else []
        else:
            probes = [{}]
        found.extend((event_type, p) for p in probes if not _accepts(case, event_type, p))
    return found


@st.composite
def rule_breaking_lines(draw: st.DrawFn, cases: Mapping[str, Case]) -> bytes:
    """A contract-valid line that the rules reject against the cases' current state.

    Either any non-received event for a case that does not exist, or an event
    the case rejects now (already received, not started, closed, approval
    without its prerequisites...).
    """
    if not cases or not _chance(draw, 75):
        number = draw(application_numbers.filter(lambda n: n not in cases))
        event_type = draw(st.sampled_from(t.EVENT_TYPES[1:]))
        payload = draw(payloads(event_type))
    else:
        number = draw(st.sampled_from(sorted(cases)))
        event_type, fixed = draw(st.sampled_from(rejected_probes(cases[number])))
        payload = {**draw(payloads(event_type)), **fixed}
        if event_type == t.DOCUMENTS_RECEIVED:
            payload = fixed
    return encode(
        event_dict(
            draw(st.uuids()),
            event_type,
            number,
            draw(aware_datetimes),
            draw(st.sampled_from(SOURCES)),
            payload,
        )
    )


@st.composite
def noisy_histories(draw: st.DrawFn, max_cases: int = 8, max_events: int = 16) -> History:
    """A history as a file: contract-invalid and blank lines here and there, line endings."""
    history = draw(histories(max_cases=max_cases, max_events=max_events))
    noise = draw(
        st.lists(
            st.one_of(
                contract_invalid_lines(history.application_numbers),
                st.sampled_from((b"", b"   ", b"\t", b"\r\n")),
            ),
            max_size=6,
        )
    )
    lines = list(history.lines)
    for raw in noise:
        lines.insert(draw(st.integers(0, len(lines))), raw)
    ending = draw(st.sampled_from((b"", b"\n", b"\r\n")))
    return History(tuple(raw + ending for raw in lines), history.application_numbers)


@st.composite
def reused_id_histories(draw: st.DrawFn) -> History:
    """A history where a few lines of one case come again, re-addressed to another case:
    the same event_id on two cases."""
    history = draw(histories(min_cases=2, max_cases=5, max_events=10))
    lines = list(history.lines)
    for _ in range(draw(st.integers(1, 3))):
        event = json.loads(draw(st.sampled_from(history.lines)))
        others = [n for n in history.application_numbers if n != event["application_number"]]
        event["application_number"] = draw(st.sampled_from(others))
        lines.insert(draw(st.integers(0, len(lines))), json.dumps(event).encode())
    return History(tuple(lines), history.application_numbers)


def commands(lines: Iterable[bytes]) -> list[RecordCaseEvent]:
    """The lines that parse, as commands (contract-invalid lines skipped)."""
    found = []
    for line in lines:
        try:
            found.append(parse_event(line.rstrip(b"\r\n")))
        except ContractError:
            continue
    return found


# ---------------------------------------------------------------- database helpers


def stored_event_ids(store: CaseStore, numbers: Iterable[str]) -> dict[str, list[UUID]]:
    """The stored event_ids of each case that has events, in version order."""
    found = {n: [e.event_id for e in store.stored_events(case_id(n))] for n in numbers}
    return {n: ids for n, ids in found.items() if ids}


def event_rows(store: CaseStore) -> list[tuple[Any, ...]]:
    """Every stored event row, byte for byte, in notification order."""
    stored = rows(
        store,
        "SELECT notification_id, originator_id, originator_version, topic, state"
        " FROM {schema}.{events} ORDER BY notification_id",
    )
    return [
        (
            r["notification_id"],
            r["originator_id"],
            r["originator_version"],
            r["topic"],
            bytes(r["state"]),
        )
        for r in stored
    ]


def dead_letter_rows(store: CaseStore, origin: str | None = None) -> list[dict[str, Any]]:
    """Dead letters (of ``origin``, or all) ordered by origin and position (line number)."""
    where = " WHERE origin = %s" if origin is not None else ""
    letters = rows(
        store,
        "SELECT origin, position, raw, error_kind, reason, rule, field,"
        " application_number, event_id FROM {schema}.dead_letters"
        + where
        + " ORDER BY origin, position",
        (origin,) if origin is not None else None,
    )
    return [{**r, "raw": bytes(r["raw"])} for r in letters]


def case_states(store: CaseStore, numbers: Iterable[str]) -> dict[str, dict[str, Any]]:
    loaded = store.load([case_id(n) for n in numbers])
    return {c.application_number: state_of(c) for c in loaded.values()}

"""The history lines: which events show, what they say in both languages, no personal data."""

from __future__ import annotations

from datetime import date

import pytest
from builders import (
    ACKNOWLEDGED_ON,
    DUE_ON,
    INTERVIEW_AT,
    OCCURRED_AT,
    RECEIVED_ON,
    apply,
    cmd,
    person,
    ready_for_approval_steps,
)

from domain import catalogue as t
from domain.case import Case
from projections import case_status, timeline

APPROVED = (*ready_for_approval_steps(), t.DECISION_MADE)

# For each shown type (decision.made by outcome): steps after application.received
# ending with an event of that type.
PATHS: dict[str, tuple] = {
    t.RECEIVED: (),
    t.ACKNOWLEDGED: (t.ACKNOWLEDGED,),
    "sponsor_eligibility.met": ("sponsor_eligibility.started", "sponsor_eligibility.met"),
    "sponsor_eligibility.not_met": ("sponsor_eligibility.started", "sponsor_eligibility.not_met"),
    "eligibility.met": ("eligibility.started", "eligibility.met"),
    "eligibility.not_met": ("eligibility.started", "eligibility.not_met"),
    "biometrics.requested": ("biometrics.requested",),
    "biometrics.completed": ("biometrics.requested", "biometrics.completed"),
    "biometrics.exempted": ("biometrics.exempted",),
    "medical.requested": ("medical.requested",),
    "medical.passed": ("medical.requested", "medical.passed"),
    "medical.failed": ("medical.requested", "medical.failed"),
    "medical.exempted": ("medical.exempted",),
    "background_check.started": ("background_check.started",),
    "background_check.completed": ("background_check.started", "background_check.completed"),
    t.DOCUMENTS_REQUESTED: (t.DOCUMENTS_REQUESTED,),
    t.DOCUMENTS_RECEIVED: (t.DOCUMENTS_REQUESTED, t.DOCUMENTS_RECEIVED),
    t.INTERVIEW_SCHEDULED: (t.INTERVIEW_SCHEDULED,),
    t.INTERVIEW_COMPLETED: (t.INTERVIEW_SCHEDULED, t.INTERVIEW_COMPLETED),
    "decision.made.approved": APPROVED,
    "decision.made.refused": (cmd(t.DECISION_MADE, outcome="refused"),),
    t.WITHDRAWN: (t.WITHDRAWN,),
    t.PASSPORT_REQUESTED: (*APPROVED, cmd(t.PASSPORT_REQUESTED, due_on=DUE_ON)),
    t.COPR_ISSUED: (*APPROVED, t.COPR_ISSUED),
    t.CORRESPONDENCE_SENT: (t.CORRESPONDENCE_SENT,),
}


def events_of(*steps: object, received: object = t.RECEIVED) -> list[Case.Event]:
    case = apply(None, received, *steps)  # type: ignore[arg-type]
    return case.collect_events()  # type: ignore[return-value]


def last_event(key: str) -> Case.Event:
    return events_of(*PATHS[key])[-1]


def test_every_shown_type_has_a_path_and_texts() -> None:
    shown = {x for x in t.EVENT_TYPES if x not in timeline.INTERNAL} - {t.DECISION_MADE}
    expected = shown | {f"{t.DECISION_MADE}.{o}" for o in t.DECISION_OUTCOMES}
    assert set(PATHS) == expected == set(timeline.TEXTS)


@pytest.mark.parametrize("key", sorted(PATHS))
def test_entry_has_both_languages(key: str) -> None:
    event = last_event(key)
    line = timeline.entry(event)
    assert line is not None
    assert line["event_type"] == event.event_type
    for field in ("title", "text"):
        en, fr = line[f"{field}_en"], line[f"{field}_fr"]
        assert en.strip() and fr.strip()
        assert en != fr
        assert "{" not in en + fr  # every placeholder filled
    assert line["case_id"] == event.originator_id
    assert line["version"] == event.originator_version
    assert line["occurred_at"] == event.occurred_at
    assert line["recorded_at"] == event.timestamp
    assert line["recorded_at"].tzinfo is not None and line["occurred_at"].tzinfo is not None
    assert timeline.is_shown(event)


def test_decision_texts_differ_by_outcome() -> None:
    approved = timeline.entry(last_event("decision.made.approved"))
    refused = timeline.entry(last_event("decision.made.refused"))
    assert approved and refused
    for field in ("title_en", "title_fr", "text_en", "text_fr"):
        assert approved[field] != refused[field]


@pytest.mark.parametrize("event_type", sorted(timeline.INTERNAL))
def test_internal_steps_are_not_shown(event_type: str) -> None:
    event = events_of(event_type)[-1]
    assert event.event_type == event_type
    assert timeline.entry(event) is None
    assert not timeline.is_shown(event)


def test_results_are_shown_neutrally() -> None:
    for good, bad in (
        ("medical.passed", "medical.failed"),
        ("eligibility.met", "eligibility.not_met"),
    ):
        a, b = timeline.entry(last_event(good)), timeline.entry(last_event(bad))
        assert a and b
        assert (a["title_en"], a["text_en"]) == (b["title_en"], b["text_en"])


def test_dates_appear_in_both_languages() -> None:
    cases = {
        t.RECEIVED: RECEIVED_ON.isoformat(),
        t.ACKNOWLEDGED: ACKNOWLEDGED_ON.isoformat(),
        "biometrics.requested": DUE_ON.isoformat(),
        "medical.requested": DUE_ON.isoformat(),
        t.DOCUMENTS_REQUESTED: DUE_ON.isoformat(),
        t.PASSPORT_REQUESTED: DUE_ON.isoformat(),
        t.INTERVIEW_SCHEDULED: INTERVIEW_AT.date().isoformat(),
        "decision.made.refused": OCCURRED_AT.date().isoformat(),  # no decided_on: occurred
        "background_check.started": OCCURRED_AT.date().isoformat(),
    }
    for key, day in cases.items():
        line = timeline.entry(last_event(key))
        assert line is not None
        assert day in line["text_en"] and day in line["text_fr"], key


def test_own_dates_win_over_the_occurred_date() -> None:
    decided = date(2024, 2, 29)
    event = events_of(cmd(t.DECISION_MADE, outcome="refused", decided_on=decided))[-1]
    line = timeline.entry(event)
    assert line and "2024-02-29" in line["text_en"] and "2024-02-29" in line["text_fr"]


def test_documents_are_listed_by_name() -> None:
    event = events_of(cmd(t.DOCUMENTS_REQUESTED, documents=["police_certificate", "x_ray_2"]))[-1]
    line = timeline.entry(event)
    assert line is not None
    assert "police certificate" in line["text_en"] and "x ray 2" in line["text_en"]
    assert "certificat de police" in line["text_fr"]


def test_no_personal_data_in_any_text() -> None:
    applicant = person(
        uci="4455667788",
        given_name="Zéphyrine",
        family_name="Quackenbush",
        date_of_birth=date(1991, 7, 23),
        email="zephyrine.q@example.org",
    )
    sponsor = person(
        uci="99887766", given_name="Bartholomew", family_name="Ngata", email="bart@example.net"
    )
    representative = {"name": "Ottilie Van Rensburg", "email": "ovr@law.example.ca"}
    received = cmd(
        t.RECEIVED,
        principal_applicant=applicant,
        sponsor=sponsor,
        representative=representative,
    )
    subject = cmd(t.CORRESPONDENCE_SENT, subject="Please write to bart@example.net about 99887766")
    events = events_of(*APPROVED, t.COPR_ISSUED, received=received)
    events += events_of(subject, t.WITHDRAWN, received=received)
    secrets = [
        *(str(applicant[k]) for k in ("uci", "given_name", "family_name", "email")),
        *(str(sponsor[k]) for k in ("uci", "given_name", "family_name", "email")),
        applicant["date_of_birth"].isoformat(),
        sponsor["date_of_birth"].isoformat(),
        *representative.values(),
    ]
    texts = []
    for event in events:
        line = timeline.entry(event)
        if line is not None:
            texts += [line[k] for k in ("title_en", "title_fr", "text_en", "text_fr")]
    assert len(texts) >= 4 * 10
    for text in texts:
        for secret in secrets:
            assert secret not in text
    # A producer's free-text subject reaches no reader, masked or not.
    assert not any("write to" in text or "écrire" in text for text in texts)


def test_a_letter_reads_the_same_whatever_its_subject() -> None:
    lines = [
        timeline.entry(events_of(cmd(t.CORRESPONDENCE_SENT, subject=subject))[-1])
        for subject in ("Medical: HIV test result for Quackenbush", "Update on your application")
    ]
    assert lines[0] and lines[1]
    for field in ("title_en", "title_fr", "text_en", "text_fr"):
        assert lines[0][field] == lines[1][field]
        assert "Quackenbush" not in lines[0][field] and "HIV" not in lines[0][field]


def _every_line() -> list[timeline.Entry]:
    """The lines of an approved file with every kind of step, and a letter."""
    events = events_of(t.ACKNOWLEDGED, t.CORRESPONDENCE_SENT, *APPROVED[1:], t.COPR_ISSUED)
    return [line for line in map(timeline.entry, events) if line is not None]


def test_a_sponsor_sees_the_overall_milestones_only() -> None:
    lines = _every_line()
    shown = timeline.for_role(lines, "sponsor")
    assert [line["event_type"] for line in shown] == [
        t.RECEIVED,
        t.ACKNOWLEDGED,
        t.DECISION_MADE,
    ]
    hidden = {line["event_type"] for line in lines} - {line["event_type"] for line in shown}
    assert {"medical.passed", "eligibility.met", t.CORRESPONDENCE_SENT} <= hidden


@pytest.mark.parametrize("role", ["principal_applicant", "representative"])
def test_the_applicant_and_the_representative_see_every_line(role: str) -> None:
    lines = _every_line()
    assert timeline.for_role(lines, role) == lines


def test_an_unknown_role_sees_nothing() -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        timeline.for_role(_every_line(), "auditor")


def test_a_served_line_has_no_event_type() -> None:
    line = _every_line()[0]
    for lang in ("en", "fr"):
        served = timeline.served(line, lang)
        assert set(served) == {"title", "text", "occurred_at", "recorded_at"}
        assert served["title"] == line[f"title_{lang}"]
        assert served["occurred_at"].endswith("+00:00")


def test_a_history_line_moves_last_updated() -> None:
    """correspondence.sent changes no status field, but the user sees a new line."""
    events = events_of(t.ACKNOWLEDGED, t.CORRESPONDENCE_SENT)
    before = case_status.fold(events[:-1])
    after = case_status.fold(events)
    assert before and after
    assert after["last_updated"] == events[-1].timestamp.isoformat() != before["last_updated"]

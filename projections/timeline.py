"""The dated history the tracker shows: which events appear, what they say, and to whom.

``entry(event)`` is pure (no I/O), so the case_history projection and its
rebuild give the same rows, and case_status can ask ``is_shown`` to decide
whether an event moved "last updated".

What stays out (internal-only, ``entry`` returns None):

* ``eligibility.started`` and ``sponsor_eligibility.started``: an officer
  opening a review is a work-queue step; the activity status ("in progress")
  already shows it, and a history line would only invite questions.

Who sees which lines (``for_role``, the one filter every reader's history goes
through: the tracker_history projection behind the API, and ``casetrack
status --role``): the principal applicant and the representative see every
shown line; the sponsor sees the overall milestones only (received,
acknowledged, decided, withdrawn), never the applicant's reviews, results,
requests, due dates, documents or letters. Readers get ``served`` lines:
title, text and both times, never the internal event type.

What is shown neutrally: the end of the eligibility reviews (``met`` and
``not_met``) and the medical result (``passed`` and ``failed``) read the same
whatever the result; a result is explained with the decision, in a letter.

Texts carry codes and dates only, never personal data: the events they are
built from hold none, except ``application.received`` (parties are not used)
and ``correspondence.sent``, whose subject is the producer's free text (it can
hold names and health data). The subject stays in the log for auditors and
reaches no reader: the line is one fixed text in each language ("We sent you
a message"), the letter itself says what it is about. Dates are ISO
(yyyy-mm-dd) in both languages; an event without its own date uses the date
it occurred.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from string import Formatter
from typing import Any

from domain import catalogue as t
from domain.case import Case
from projections.roles import ROLES, check

Entry = dict[str, Any]


@dataclass(frozen=True)
class Text:
    """Title and text in both languages; texts are ``str.format`` templates."""

    title_en: str
    title_fr: str
    text_en: str
    text_fr: str

    @cached_property
    def fields(self) -> frozenset[str]:
        """The placeholders the texts use: only these are computed for an entry."""
        parts = [*Formatter().parse(self.text_en), *Formatter().parse(self.text_fr)]
        return frozenset(name for _, name, _, _ in parts if name)


_RESULTS_EN = "We will tell you the outcome with our decision."
_RESULTS_FR = "Nous vous communiquerons le résultat avec notre décision."

# Keyed by event type; decision.made by "decision.made.<outcome>".
# Placeholders: {on} (a date), {due_en}/{due_fr} (" by <date>" or ""),
# {documents_en}/{documents_fr}, {when}.
TEXTS: dict[str, Text] = {
    t.RECEIVED: Text(
        "We received your application",
        "Nous avons reçu votre demande",
        "We received your application on {on}.",
        "Nous avons reçu votre demande le {on}.",
    ),
    t.ACKNOWLEDGED: Text(
        "We sent you an acknowledgement of receipt",
        "Nous vous avons envoyé un accusé de réception",
        "Your application is complete; we sent the acknowledgement of receipt on {on}.",
        "Votre demande est complète ; nous avons envoyé l'accusé de réception le {on}.",
    ),
    "sponsor_eligibility.met": Text(
        "We finished reviewing the sponsor's eligibility",
        "Nous avons terminé l'examen de l'admissibilité du répondant",
        "The review of the sponsor's eligibility was completed on {on}. " + _RESULTS_EN,
        "L'examen de l'admissibilité du répondant a pris fin le {on}. " + _RESULTS_FR,
    ),
    "eligibility.met": Text(
        "We finished reviewing your eligibility",
        "Nous avons terminé l'examen de votre admissibilité",
        "The review of your eligibility was completed on {on}. " + _RESULTS_EN,
        "L'examen de votre admissibilité a pris fin le {on}. " + _RESULTS_FR,
    ),
    "biometrics.requested": Text(
        "We sent you a biometrics instruction letter",
        "Nous vous avons envoyé une lettre de directives relative à la biométrie",
        "Give your fingerprints and photo{due_en}. Follow the instructions in the letter.",
        "Fournissez vos empreintes digitales et votre photo{due_fr}. "
        "Suivez les directives de la lettre.",
    ),
    "biometrics.completed": Text(
        "We received your biometrics",
        "Nous avons reçu vos données biométriques",
        "Your biometrics were collected on {on}.",
        "Vos données biométriques ont été recueillies le {on}.",
    ),
    "biometrics.exempted": Text(
        "You do not need to give biometrics",
        "Vous n'avez pas à fournir de données biométriques",
        "On {on}, we confirmed that you do not need to give biometrics for this application.",
        "Le {on}, nous avons confirmé que vous n'avez pas à fournir de données biométriques "
        "pour cette demande.",
    ),
    "medical.requested": Text(
        "We sent you medical exam instructions",
        "Nous vous avons envoyé les directives pour l'examen médical",
        "Get your medical exam{due_en}. Follow the instructions in the letter.",
        "Passez votre examen médical{due_fr}. Suivez les directives de la lettre.",
    ),
    "medical.passed": Text(
        "We received your medical exam results",
        "Nous avons reçu les résultats de votre examen médical",
        "We received the results of your medical exam on {on}. " + _RESULTS_EN,
        "Nous avons reçu les résultats de votre examen médical le {on}. " + _RESULTS_FR,
    ),
    "medical.exempted": Text(
        "You do not need a medical exam",
        "Vous n'avez pas besoin de passer un examen médical",
        "On {on}, we confirmed that you do not need a medical exam for this application.",
        "Le {on}, nous avons confirmé que vous n'avez pas besoin d'examen médical "
        "pour cette demande.",
    ),
    "background_check.started": Text(
        "We started your background check",
        "Nous avons commencé la vérification de vos antécédents",
        "Your background check started on {on}. You do not need to do anything.",
        "La vérification de vos antécédents a commencé le {on}. Vous n'avez rien à faire.",
    ),
    "background_check.completed": Text(
        "We completed your background check",
        "Nous avons terminé la vérification de vos antécédents",
        "Your background check was completed on {on}.",
        "La vérification de vos antécédents a pris fin le {on}.",
    ),
    t.DOCUMENTS_REQUESTED: Text(
        "We need additional documents",
        "Nous avons besoin de documents supplémentaires",
        "Send these documents{due_en}: {documents_en}.",
        "Envoyez ces documents{due_fr} : {documents_fr}.",
    ),
    t.DOCUMENTS_RECEIVED: Text(
        "We received your documents",
        "Nous avons reçu vos documents",
        "We received these documents on {on}: {documents_en}.",
        "Nous avons reçu ces documents le {on} : {documents_fr}.",
    ),
    t.INTERVIEW_SCHEDULED: Text(
        "We scheduled an interview",
        "Nous avons fixé une entrevue",
        "Your interview is on {when}. The letter we sent you says where and what to bring.",
        "Votre entrevue aura lieu le {when}. La lettre que nous vous avons envoyée indique "
        "le lieu et les documents à apporter.",
    ),
    t.INTERVIEW_COMPLETED: Text(
        "Your interview took place",
        "Votre entrevue a eu lieu",
        "Your interview took place on {on}.",
        "Votre entrevue a eu lieu le {on}.",
    ),
    t.DECISION_MADE + ".approved": Text(
        "We approved your application",
        "Nous avons approuvé votre demande",
        "We approved your application on {on}. We will tell you what to do next.",
        "Nous avons approuvé votre demande le {on}. Nous vous dirons quoi faire ensuite.",
    ),
    t.DECISION_MADE + ".refused": Text(
        "We refused your application",
        "Nous avons refusé votre demande",
        "We made a decision on {on}: your application was refused. "
        "We sent you a letter that explains why.",
        "Nous avons pris une décision le {on} : votre demande a été refusée. "
        "Nous vous avons envoyé une lettre qui en explique les raisons.",
    ),
    t.WITHDRAWN: Text(
        "Your application was withdrawn",
        "Votre demande a été retirée",
        "Your application was withdrawn on {on}. We closed the file.",
        "Votre demande a été retirée le {on}. Nous avons fermé le dossier.",
    ),
    t.PASSPORT_REQUESTED: Text(
        "We requested your passport",
        "Nous avons demandé votre passeport",
        "Send your passport{due_en}. Follow the instructions in the letter.",
        "Envoyez votre passeport{due_fr}. Suivez les directives de la lettre.",
    ),
    t.COPR_ISSUED: Text(
        "We issued your Confirmation of Permanent Residence",
        "Nous avons délivré votre confirmation de résidence permanente",
        "Your Confirmation of Permanent Residence was issued on {on}.",
        "Votre confirmation de résidence permanente a été délivrée le {on}.",
    ),
    t.CORRESPONDENCE_SENT: Text(
        "We sent you a message",
        "Nous vous avons envoyé un message",
        "We sent you a message on {on}.",
        "Nous vous avons envoyé un message le {on}.",
    ),
}
# Results are shown neutrally: the same texts whatever the outcome (see above).
TEXTS["sponsor_eligibility.not_met"] = TEXTS["sponsor_eligibility.met"]
TEXTS["eligibility.not_met"] = TEXTS["eligibility.met"]
TEXTS["medical.failed"] = TEXTS["medical.passed"]

INTERNAL: frozenset[str] = frozenset({"eligibility.started", "sponsor_eligibility.started"})

# The overall milestones: the only lines a sponsor sees (by event type).
SPONSOR_SHOWN: frozenset[str] = frozenset(
    {t.RECEIVED, t.ACKNOWLEDGED, t.DECISION_MADE, t.WITHDRAWN}
)

DOCUMENT_NAMES: dict[str, tuple[str, str]] = {
    "police_certificate": ("police certificate", "certificat de police"),
    "passport_copy": ("copy of your passport", "copie de votre passeport"),
    "photos": ("photos", "photos"),
    "relationship_evidence": ("proof of relationship", "preuve de la relation"),
    "proof_of_relationship": ("proof of relationship", "preuve de la relation"),
    "marriage_certificate": ("marriage certificate", "certificat de mariage"),
    "proof_of_cohabitation": ("proof of cohabitation", "preuve de cohabitation"),
    "birth_certificate": ("birth certificate", "acte de naissance"),
    "schedule_a": ("Schedule A (background declaration)", "Annexe A (antécédents)"),
    "imm5669": ("Schedule A (background declaration)", "Annexe A (antécédents)"),
    "sponsor_income_proof": ("proof of the sponsor's income", "preuve du revenu du répondant"),
}


def text_key(event: Case.Event) -> str | None:
    """The key of the event's texts in TEXTS, or None when it is not shown."""
    if isinstance(event, Case.DecisionMade):
        return f"{t.DECISION_MADE}.{event.outcome}"
    return None if event.event_type in INTERNAL else event.event_type


def is_shown(event: Case.Event, role: str | None = None) -> bool:
    """Whether the event adds a line to the history (to ``role``'s, when given)."""
    key = text_key(event)
    shown = key is not None and key in TEXTS
    return shown and (role is None or sees(role, event.event_type))


def entry(event: Case.Event) -> Entry | None:
    """The history line for ``event``, or None for internal-only events."""
    key = text_key(event)
    texts = TEXTS.get(key) if key is not None else None
    if texts is None:
        return None
    values = _values(event, texts.fields)
    return {
        "case_id": event.originator_id,
        "version": event.originator_version,
        "event_type": event.event_type,
        "title_en": texts.title_en,
        "title_fr": texts.title_fr,
        "text_en": texts.text_en.format(**values),
        "text_fr": texts.text_fr.format(**values),
        "occurred_at": event.occurred_at,
        "recorded_at": event.timestamp,
    }


def for_role(entries: Iterable[Entry], role: str) -> list[Entry]:
    """The lines of ``entries`` (``entry`` dicts or case_history rows) that ``role`` may see."""
    check(role)
    return [e for e in entries if sees(role, e["event_type"])]


def sees(role: str, event_type: str) -> bool:
    """Whether ``role`` sees the history line of an ``event_type`` (the rule for_role
    applies); an unknown role sees nothing."""
    if role == "sponsor":
        return event_type in SPONSOR_SHOWN
    return role in ROLES


def served(line: Entry, lang: str) -> Entry:
    """A line as a reader gets it: title and text in ``lang``, times in UTC, no event type."""
    return {
        "title": line[f"title_{lang}"],
        "text": line[f"text_{lang}"],
        "occurred_at": _utc(line["occurred_at"]),
        "recorded_at": _utc(line["recorded_at"]),
    }


def document_names(codes: list[str], lang: str) -> str:
    """Readable names of document codes; unknown codes read as their words."""
    index = 0 if lang == "en" else 1
    return ", ".join(
        DOCUMENT_NAMES[c][index] if c in DOCUMENT_NAMES else c.replace("_", " ") for c in codes
    )


def _values(event: Case.Event, fields: frozenset[str]) -> dict[str, str]:
    """The placeholder values ``fields`` of ``event``'s texts."""
    values: dict[str, str] = {}
    if "on" in fields:
        values["on"] = _event_date(event).isoformat()
    if fields & {"due_en", "due_fr"}:
        due = getattr(event, "due_on", None)
        values["due_en"] = f" by {due.isoformat()}" if due else ""
        values["due_fr"] = f" d'ici le {due.isoformat()}" if due else ""
    if fields & {"documents_en", "documents_fr"}:
        documents = list(getattr(event, "documents", None) or [])
        values["documents_en"] = document_names(documents, "en")
        values["documents_fr"] = document_names(documents, "fr")
    if "when" in fields:
        values["when"] = (
            _moment(event.scheduled_for) if isinstance(event, Case.InterviewScheduled) else ""
        )
    return values


def _event_date(event: Case.Event) -> date:
    """The event's own date when it has one, else the date it occurred."""
    for name in ("received_on", "acknowledged_on", "completed_on", "decided_on", "issued_on"):
        value = getattr(event, name, None)
        if isinstance(value, date):
            return value
    return event.occurred_at.date()


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _moment(when: datetime) -> str:
    """``2024-05-06 09:00 (UTC-04:00)``: the local time given, with its offset."""
    offset = when.strftime("%z")
    zone = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    return f"{when:%Y-%m-%d %H:%M} ({zone})"

"""What the application page shows, from the role-filtered view the API serves.

``application`` reads only the view that adapters.http.views.shown_view made for the
caller's role: a part the role may not see is absent from that view, so it is absent
from the page. Nothing here reads the database or adds a field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.http.web.texts import ABOUT, MEANS, t
from projections.processing_stats import CATEGORY_NAMES
from projections.timeline import DOCUMENT_NAMES

STAGES = ("received", "in_progress", "closed")  # the overall statuses, in order
ACTIVITY_ORDER = ("sponsor_eligibility", "eligibility", "medical", "biometrics", "background_check")
_BADGES = {
    "received": "info",
    "in_progress": "progress",
    "approved": "success",
    "refused": "neutral",
    "withdrawn": "neutral",
    "not_started": "neutral",
    "action_required": "warning",
    "completed": "success",
    "not_required": "neutral",
}


@dataclass(frozen=True)
class Activity:
    key: str
    name: str
    status: str
    status_text: str
    badge: str
    about: str
    means: str


@dataclass(frozen=True)
class Step:
    text: str
    due_on: str | None


@dataclass
class ApplicationPage:
    number: str
    role: str
    status: str
    status_text: str
    badge: str
    received_on: str
    last_updated: str
    days_elapsed: int
    standard_days: int
    category: str | None
    acknowledged_on: str | None
    decided_on: str | None
    details: bool  # whether the role sees the activities (not a sponsor, not before AOR)
    activities: list[Activity] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    documents: list[Step] = field(default_factory=list)
    copr_issued_on: str | None = None
    estimate: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    contact_text: str = ""
    contact_url: str | None = None


def _capitalized(value: str | None) -> str | None:
    return value[:1].upper() + value[1:] if value else value


def status_text(status: str | None, outcome: str | None, lang: str) -> str:
    if status is None:
        return t("apps.unknown", lang)
    shown = t(f"status.{status}", lang)
    if status == "closed" and outcome:
        shown = (
            f"{shown} : {t(f'outcome.{outcome}', lang)}"
            if lang == "fr"
            else (f"{shown}: {t(f'outcome.{outcome}', lang)}")
        )
    return shown


def badge(status: str | None, outcome: str | None) -> str:
    return _BADGES.get(outcome or status or "", "neutral")


def document_name(code: str, lang: str) -> str:
    names = DOCUMENT_NAMES.get(code)
    if names is None:
        return code.replace("_", " ")
    return names[1] if lang == "fr" else names[0]


def step_text(step: dict[str, Any], lang: str) -> str:
    kind = step["kind"]
    if kind == "documents":
        return t("step.documents", lang, document=document_name(step.get("document") or "", lang))
    return t(f"step.{kind}", lang)


def application(view: dict[str, Any], lang: str) -> ApplicationPage:
    status, outcome = view["status"], view.get("outcome")
    category = view.get("category")
    names = CATEGORY_NAMES.get(category or "")
    found = ApplicationPage(
        number=view["application_number"],
        role=view["role"],
        status=status,
        status_text=status_text(status, outcome, lang),
        badge=badge(status, outcome),
        received_on=view["received_on"],
        last_updated=view["last_updated"],
        days_elapsed=int(view["days_elapsed"]),
        standard_days=int(view["service_standard_days"]),
        category=_capitalized((names[1] if lang == "fr" else names[0]) if names else category),
        acknowledged_on=view.get("acknowledged_on"),
        decided_on=view.get("decided_on"),
        details="activities" in view,
        estimate=view.get("estimate"),
        history=list(reversed(view.get("history") or [])),  # newest first
    )
    for key in ACTIVITY_ORDER:
        state = (view.get("activities") or {}).get(key)
        if state is None:
            continue
        found.activities.append(
            Activity(
                key, t(f"activity.{key}", lang), state, t(f"activity_status.{state}", lang),
                _BADGES.get(state, "progress"), ABOUT[key][lang], MEANS[state][lang],
            )
        )  # fmt: skip
    for step in view.get("next_steps") or []:
        shown = Step(step_text(step, lang), step.get("due_on"))
        found.steps.append(shown)
        if step["kind"] == "documents":
            found.documents.append(
                Step(document_name(step.get("document") or "", lang), shown.due_on)
            )
    documents = view.get("documents") or {}
    if documents.get("copr") == "issued":
        found.copr_issued_on = documents.get("copr_issued_on")
    contact = str((view.get("contact") or {}).get("text", ""))
    at = contact.find("https://")
    if at >= 0:
        found.contact_text = contact[:at].rstrip(" :")
        found.contact_url = contact[at:].strip()
    else:
        found.contact_text = contact
    return found

"""The case_status view as a pure fold of case events.

``evolve(view, event)`` is deterministic and does no I/O: the projector applies
it incrementally, a rebuild applies it from the first event, and both must
agree (tests/property checks it). Views are plain JSON-able dicts.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.activities import STATUS_AFTER, Activity, Change
from domain.case import Case
from projections import timeline
from projections.roles import ROLES as ROLES  # re-exported: who may read a view
from projections.roles import check

SERVICE_STANDARD_DAYS = 365
View = dict[str, Any]

# Fields whose change the tracker user can see; only these (and events that add a
# history line, see projections.timeline) move last_updated. A sponsor sees less,
# so the sponsor's own last update (sponsor_last_updated) moves only with
# SPONSOR_VISIBLE and the sponsor's history lines: otherwise its time, and the
# validators built from it, would tell when a medical result or a letter came.
VISIBLE = (
    "status",
    "outcome",
    "acknowledged_on",
    "activities",
    "next_steps",
    "documents",
    "decided_on",
)
SPONSOR_VISIBLE = ("status", "outcome", "decided_on")

# Who sees what (the tracker's help pages): the principal applicant and an
# authorised representative see everything; the sponsor the overall status
# (with its own history and the contact information served beside it). Before the
# acknowledgement of receipt nobody sees more than the date received. The history
# is filtered the same way (projections.timeline.for_role).
SPONSOR_FIELDS = (
    "application_number",
    "category",
    "status",
    "outcome",
    "received_on",
    "decided_on",
    "last_updated",
)
BEFORE_AOR_FIELDS = ("application_number", "status", "received_on", "last_updated")
_BOOKKEEPING = ("version", "sponsor_last_updated")  # never shown to a role as such


def initial(event: Case.Received) -> View:
    return {
        "application_number": event.application_number,
        "category": event.category,
        "preferred_language": event.preferred_language,
        "status": "received",
        "outcome": None,
        "received_on": event.received_on.isoformat(),
        "acknowledged_on": None,
        "decided_on": None,
        "activities": {activity.value: "not_started" for activity in Activity},
        "next_steps": [],
        "documents": {"copr": "not_issued", "copr_issued_on": None},
        "last_updated": event.timestamp.isoformat(),
        "sponsor_last_updated": event.timestamp.isoformat(),
        "version": event.originator_version,
    }


def evolve(view: View | None, event: Case.Event) -> View:
    """The view after ``event``; ``view`` is not modified."""
    if isinstance(event, Case.Received):
        return initial(event)
    assert view is not None, "a case view starts with application.received"
    new = {
        **view,
        "activities": dict(view["activities"]),
        "next_steps": list(view["next_steps"]),
        "documents": dict(view["documents"]),
    }
    _apply(new, event)
    new["version"] = event.originator_version
    shown = timeline.is_shown(event)
    if shown or any(new[key] != view[key] for key in VISIBLE):
        at = new["last_updated"] = event.timestamp.isoformat()
        if (shown and event.event_type in timeline.SPONSOR_SHOWN) or any(
            new[key] != view[key] for key in SPONSOR_VISIBLE
        ):
            new["sponsor_last_updated"] = at
    return new


def fold(events: list[Case.Event]) -> View | None:
    view: View | None = None
    for event in events:
        view = evolve(view, event)
    return view


def _apply(view: View, event: Case.Event) -> None:
    if isinstance(event, Case.Acknowledged):
        view["acknowledged_on"] = event.acknowledged_on.isoformat()
        if view["status"] == "received":
            view["status"] = "in_progress"
    elif isinstance(event, Case.ActivityChanged):
        change = Change(event.change)
        view["activities"][event.activity] = STATUS_AFTER[change].value
        _drop_steps(view, event.activity)
        if change is Change.REQUESTED:
            _add_step(view, event.activity, event.due_on)
    elif isinstance(event, Case.DocumentsRequested):
        for document in event.documents:
            _drop_steps(view, "documents", document)
            _add_step(view, "documents", event.due_on, document)
    elif isinstance(event, Case.DocumentsReceived):
        for document in event.documents:
            _drop_steps(view, "documents", document)
    elif isinstance(event, Case.DecisionMade | Case.Withdrawn):
        view["status"] = "closed"
        view["outcome"] = event.outcome if isinstance(event, Case.DecisionMade) else "withdrawn"
        decided = getattr(event, "decided_on", None) or event.occurred_at.date()
        view["decided_on"] = decided.isoformat()
        view["next_steps"] = []
    elif isinstance(event, Case.PassportRequested):
        _drop_steps(view, "passport")  # a new request replaces the earlier one
        _add_step(view, "passport", event.due_on)
    elif isinstance(event, Case.CoprIssued):
        _drop_steps(view, "passport")
        issued = event.issued_on or event.occurred_at.date()
        view["documents"] = {"copr": "issued", "copr_issued_on": issued.isoformat()}


def _add_step(view: View, kind: str, due_on: date | None, document: str | None = None) -> None:
    step: dict[str, Any] = {"kind": kind, "due_on": due_on.isoformat() if due_on else None}
    if document is not None:
        step["document"] = document
    view["next_steps"].append(step)


def _drop_steps(view: View, kind: str, document: str | None = None) -> None:
    view["next_steps"] = [
        s
        for s in view["next_steps"]
        if not (s["kind"] == kind and (document is None or s.get("document") == document))
    ]


def days_elapsed(view: View, today: date) -> int:
    """Days from receipt to the decision, or to ``today`` while the case is open."""
    start = date.fromisoformat(view["received_on"])
    end = date.fromisoformat(view["decided_on"]) if view["decided_on"] else today
    return max((end - start).days, 0)


def for_role(view: View, role: str) -> View:
    """The part of the view ``role`` may see (with the sponsor's own last update)."""
    check(role)
    if view["acknowledged_on"] is not None and role != "sponsor":
        return {key: value for key, value in view.items() if key not in _BOOKKEEPING}
    keys = BEFORE_AOR_FIELDS if view["acknowledged_on"] is None else SPONSOR_FIELDS
    shown = {key: view[key] for key in keys}
    if role == "sponsor":
        shown["last_updated"] = view["sponsor_last_updated"]
    return shown


def whole(view: View) -> View:
    """All of the view that operators and auditors read (role None): every field but the
    bookkeeping version, and none of the figures ``presented`` adds for a day."""
    return {k: v for k, v in view.items() if k != "version"}


def presented(view: View, today: date, role: str | None = None) -> View:
    """The view as served to ``role`` (all of it for operators and auditors: None),
    with the figures that depend on today's date."""
    shown = for_role(view, role) if role else whole(view)
    return {
        **shown,
        "days_elapsed": days_elapsed(view, today),
        "service_standard_days": SERVICE_STANDARD_DAYS,
    }

"""What a reader is told when their file changes: pure, one event at a time.

``visible_change(before, after, event, role)`` compares the status view before and
after ``event`` as ``role`` sees it (projections.case_status.for_role, the filter the
API serves) and adds the history line the event makes when ``role`` sees it
(projections.timeline.sees, the history's filter). Nothing else reaches a
notification: a sponsor is told only of what a sponsor sees, and an event nobody in
that role can see (an internal step, a medical result for a sponsor) tells them
nothing at all (None).

The change is plain JSON, stored in the notification outbox and sent as it is (the
webhook body) or rendered (the email, adapters.mail_texts): the changed fields' names,
the history line in both languages, and the whole status view for the role.
"""

from __future__ import annotations

from typing import Any

from domain.case import Case
from projections import case_status, timeline

Change = dict[str, Any]

STATUS_CHANGED = "application.status_changed"
UPDATED = "application.updated"
# The webhook event types an endpoint can ask for (all by default).
EVENT_TYPES: tuple[str, ...] = (STATUS_CHANGED, UPDATED)

_NOT_A_CHANGE = frozenset({"last_updated"})  # moves with every visible change


def visible_change(
    before: case_status.View | None, after: case_status.View, event: Case.Event, role: str
) -> Change | None:
    """What ``role`` sees change when ``event`` turns ``before`` into ``after``; None
    when they see nothing change (and when the file is new: nobody is linked to it yet)."""
    if before is None:
        return None
    seen_before = case_status.for_role(before, role)
    seen_after = case_status.for_role(after, role)
    fields = sorted(
        key
        for key, value in seen_after.items()
        if key not in _NOT_A_CHANGE and seen_before.get(key) != value
    )
    line = _line(event) if timeline.is_shown(event, role) else None
    if not fields and line is None:
        return None
    return {
        "type": STATUS_CHANGED if {"status", "outcome"} & set(fields) else UPDATED,
        "version": event.originator_version,
        "fields": fields,
        "history": line,
        "status": seen_after,
    }


def _line(event: Case.Event) -> dict[str, str] | None:
    entry = timeline.entry(event)
    if entry is None:
        return None
    return {
        "title_en": entry["title_en"],
        "title_fr": entry["title_fr"],
        "text_en": entry["text_en"],
        "text_fr": entry["text_fr"],
        "occurred_at": entry["occurred_at"].isoformat(),
    }


def served(change: Change, lang: str) -> dict[str, Any]:
    """The change as a receiver gets it: the history line in ``lang``."""
    line = change["history"]
    return {
        "type": change["type"],
        "version": change["version"],
        "fields": change["fields"],
        "history": None
        if line is None
        else {
            "title": line[f"title_{lang}"],
            "text": line[f"text_{lang}"],
            "occurred_at": line["occurred_at"],
        },
    }

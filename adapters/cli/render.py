"""Text renderings of views for the terminal, in English or French."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from domain.activities import Activity
from projections.changes import Change
from projections.labels import text


def status_text(view: dict[str, Any], lang: str) -> str:
    """The view as the tracker would show it; sections the role may not see are absent."""
    t = lambda key, **kw: text(key, lang, **kw)  # noqa: E731
    status = t(f"status.{view['status']}")
    if view.get("outcome"):
        status += f" — {t('outcome.' + view['outcome'])}"
    lines = [
        f"{t('label.application')}: {view['application_number']}",
        f"{t('label.status')}: {status}",
        f"{t('label.received_on')}: {view['received_on']}",
        f"{t('label.last_updated')}: {view['last_updated'][:19].replace('T', ' ')} UTC",
        f"{t('label.days_elapsed')}: {view['days_elapsed']}"
        f" ({t('label.service_standard')}: {view['service_standard_days']} {t('label.days')})",
    ]
    if view.get("estimate"):
        lines.append(f"{t('label.estimate')}: {view['estimate']['text_' + lang]}")
    if "activities" in view:
        lines += ["", f"{t('label.activities')}:"]
        for activity in Activity:
            code = view["activities"][activity.value]
            lines.append(f"  {t('activity.' + activity):<32} {t('activity_status.' + code)}")
    if "next_steps" in view:
        lines += ["", f"{t('label.next_steps')}:"]
        if not view["next_steps"]:
            lines.append(f"  {t('label.none')}")
        for step in view["next_steps"]:
            label = t("step." + step["kind"], document=step.get("document", ""))
            due = f" ({t('label.due')} {step['due_on']})" if step.get("due_on") else ""
            lines.append(f"  - {label}{due}")
    if view.get("history"):
        lines += ["", f"{t('label.history')}:"]
        for entry in view["history"]:
            lines.append(f"  {entry['occurred_at'][:10]}  {entry['title']}")
    lines += ["", t("label.contact")]
    return "\n".join(lines)


def change_lines(changes: Sequence[Change], indent: str) -> list[str]:
    """What an event changed, a line each: ``path: before → after``, values as JSON (so a
    null reads apart from the text "null")."""
    show = lambda value: json.dumps(value, ensure_ascii=False)  # noqa: E731
    return [f"{indent}{c.path}: {show(c.before)} → {show(c.after)}" for c in changes]

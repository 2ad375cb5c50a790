"""What each event changed in the case state an auditor reads: (path, before, after) per field.

Auditors get every stored event and the state as of any version; these changes spare them
diffing two states by hand. The state compared is ``case_status.whole``: the whole status
view without its bookkeeping version and without the figures ``presented`` adds for a day
(days_elapsed moves with the calendar, not with events; the decision date that stops it is
itself reported). Before the first event the state is empty.

How differences read:

- dicts are compared key by key, recursively: ``activities.medical``, ``documents.copr``;
  a key absent on one side reads as null (the view's keys are all set by the first event,
  so absence only shows there, against the empty state, and a null there is no change);
- every other value, lists included, is compared whole. The one list, ``next_steps``, is
  short and in the order steps were added; dropping a step shifts the ones after it, so
  index by index an auditor would be told that steps changed which did not. Before and
  after in full say which steps came and went.

Paths join keys with dots; a key that is not an identifier is written as a JSON string in
brackets (``documents["a key"]``); ``""`` is the whole value. Pure: one ``evolve`` and one
comparison per event.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from domain.case import Case
from projections import case_status

Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_STEP = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[("(?:[^"\\]|\\.)*")\]')


@dataclass(frozen=True, slots=True)
class Change:
    """One field an event changed: where, the value before (null if absent) and after."""

    path: str
    before: Json
    after: Json


class PathError(ValueError):
    """A change's path that is malformed or does not lead through dicts of the state."""


def event_changes(events: Sequence[Case.Event]) -> list[list[Change]]:
    """For one case's events in version order, what each changed in the state (one list
    per event, in the same order). Folds once: the state after each event is the last one
    evolved by it."""
    found: list[list[Change]] = []
    view: case_status.View | None = None
    before: case_status.View = {}
    for event in events:
        view = case_status.evolve(view, event)
        after = case_status.whole(view)
        found.append(diff(before, after))
        before = after
    return found


def diff(before: Json, after: Json) -> list[Change]:
    """The changes that take ``before`` to ``after``; none when they are equal as JSON."""
    found: list[Change] = []
    _diff(before, after, (), found)
    return found


def _diff(before: Json, after: Json, keys: tuple[str, ...], found: list[Change]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in (*before, *(k for k in after if k not in before)):
            _diff(before.get(key), after.get(key), (*keys, key), found)
    elif not same(before, after):
        found.append(Change(path(keys), before, after))


def same(a: Json, b: Json) -> bool:
    """Equal as JSON values: unlike ``==``, true is not 1 and 1 is not 1.0."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def path(keys: Sequence[str]) -> str:
    """The path of ``keys`` (from the top of the state down)."""
    parts: list[str] = []
    for key in keys:
        if _IDENTIFIER.match(key):
            parts.append(f".{key}" if parts else key)
        else:
            parts.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(parts)


def keys_of(text: str) -> tuple[str, ...]:
    """The keys a path names (the inverse of ``path``)."""
    keys: list[str] = []
    at = 0
    while at < len(text):
        step = _STEP.match(text, at)
        named = step is not None and step.group(1) is not None
        if step is None or (named and step.group(0).startswith(".") != bool(keys)):
            raise PathError(f"malformed path at character {at}")
        keys.append(step.group(1) if step.group(1) is not None else json.loads(step.group(2)))
        at = step.end()
    return tuple(keys)


def apply(state: Json, changes: Sequence[Change]) -> Json:
    """``state`` (not modified) with ``changes`` made: each path set to its after value.

    The auditor's check of a list of changes: applied to the state before an event, they
    give the state after it (up to absent keys, which read as null)."""
    result = copy.deepcopy(state)
    for change in changes:
        keys = keys_of(change.path)
        if not keys:
            result = copy.deepcopy(change.after)
            continue
        target = result
        for depth, key in enumerate(keys[:-1]):
            target = target.get(key) if isinstance(target, dict) else None
            if not isinstance(target, dict):
                raise PathError(f"{path(keys[: depth + 1])} is not an object in the state")
        if not isinstance(target, dict):
            raise PathError("the state is not an object")
        target[keys[-1]] = copy.deepcopy(change.after)
    return result

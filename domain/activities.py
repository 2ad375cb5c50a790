"""The per-person activities the tracker shows, and the statuses they move through."""

from enum import StrEnum


class Activity(StrEnum):
    SPONSOR_ELIGIBILITY = "sponsor_eligibility"
    ELIGIBILITY = "eligibility"
    BIOMETRICS = "biometrics"
    MEDICAL = "medical"
    BACKGROUND_CHECK = "background_check"


class ActivityStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    ACTION_REQUIRED = "action_required"
    COMPLETED = "completed"
    NOT_REQUIRED = "not_required"


class Change(StrEnum):
    """The verb after the dot in an activity event type (``medical.passed``)."""

    STARTED = "started"
    REQUESTED = "requested"
    MET = "met"
    NOT_MET = "not_met"
    COMPLETED = "completed"
    PASSED = "passed"
    FAILED = "failed"
    EXEMPTED = "exempted"


# Which changes each activity accepts; anything else is not in the catalogue.
CHANGES: dict[Activity, frozenset[Change]] = {
    Activity.SPONSOR_ELIGIBILITY: frozenset({Change.STARTED, Change.MET, Change.NOT_MET}),
    Activity.ELIGIBILITY: frozenset({Change.STARTED, Change.MET, Change.NOT_MET}),
    Activity.BIOMETRICS: frozenset({Change.REQUESTED, Change.COMPLETED, Change.EXEMPTED}),
    Activity.MEDICAL: frozenset({Change.REQUESTED, Change.PASSED, Change.FAILED, Change.EXEMPTED}),
    Activity.BACKGROUND_CHECK: frozenset({Change.STARTED, Change.COMPLETED}),
}

# The status an activity takes after each change.
STATUS_AFTER: dict[Change, ActivityStatus] = {
    Change.STARTED: ActivityStatus.IN_PROGRESS,
    Change.REQUESTED: ActivityStatus.ACTION_REQUIRED,
    Change.MET: ActivityStatus.COMPLETED,
    Change.NOT_MET: ActivityStatus.COMPLETED,
    Change.COMPLETED: ActivityStatus.COMPLETED,
    Change.PASSED: ActivityStatus.COMPLETED,
    Change.FAILED: ActivityStatus.COMPLETED,
    Change.EXEMPTED: ActivityStatus.NOT_REQUIRED,
}

# Outcomes an approval accepts for each activity.
APPROVAL_REQUIRES: dict[Activity, frozenset[Change]] = {
    Activity.ELIGIBILITY: frozenset({Change.MET}),
    Activity.SPONSOR_ELIGIBILITY: frozenset({Change.MET}),
    Activity.MEDICAL: frozenset({Change.PASSED, Change.EXEMPTED}),
    Activity.BIOMETRICS: frozenset({Change.COMPLETED, Change.EXEMPTED}),
    Activity.BACKGROUND_CHECK: frozenset({Change.COMPLETED}),
}


_ACTIVITY_TYPES = {
    f"{activity}.{change}": (activity, change)
    for activity, changes in CHANGES.items()
    for change in changes
}


def split_activity_type(event_type: str) -> tuple[Activity, Change] | None:
    """``"medical.passed"`` -> (MEDICAL, PASSED); None for non-activity types."""
    return _ACTIVITY_TYPES.get(event_type)

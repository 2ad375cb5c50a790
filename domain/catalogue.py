"""The vocabulary of contract v1: event types, in the order a case usually meets them,
and the values a few payload fields take.

The contract's JSON Schema, the API's models and the command line take their
enumerations from here (a ``Literal`` type, its values as a tuple).
"""

from typing import Final, Literal, get_args

RECEIVED: Final = "application.received"
ACKNOWLEDGED: Final = "application.acknowledged"
WITHDRAWN: Final = "application.withdrawn"
DECISION_MADE: Final = "decision.made"
DOCUMENTS_REQUESTED: Final = "documents.requested"
DOCUMENTS_RECEIVED: Final = "documents.received"
INTERVIEW_SCHEDULED: Final = "interview.scheduled"
INTERVIEW_COMPLETED: Final = "interview.completed"
COPR_ISSUED: Final = "copr.issued"
PASSPORT_REQUESTED: Final = "passport.requested"
CORRESPONDENCE_SENT: Final = "correspondence.sent"

EVENT_TYPES: Final[tuple[str, ...]] = (
    RECEIVED,
    ACKNOWLEDGED,
    "sponsor_eligibility.started",
    "sponsor_eligibility.met",
    "sponsor_eligibility.not_met",
    "eligibility.started",
    "eligibility.met",
    "eligibility.not_met",
    "biometrics.requested",
    "biometrics.completed",
    "biometrics.exempted",
    "medical.requested",
    "medical.passed",
    "medical.failed",
    "medical.exempted",
    "background_check.started",
    "background_check.completed",
    DOCUMENTS_REQUESTED,
    DOCUMENTS_RECEIVED,
    INTERVIEW_SCHEDULED,
    INTERVIEW_COMPLETED,
    DECISION_MADE,
    WITHDRAWN,
    COPR_ISSUED,
    PASSPORT_REQUESTED,
    CORRESPONDENCE_SENT,
)

Category = Literal["spouse", "common_law_partner", "conjugal_partner", "dependent_child"]
Language = Literal["en", "fr"]
DecisionOutcome = Literal["approved", "refused"]

CATEGORIES: Final[tuple[Category, ...]] = get_args(Category)
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)
DECISION_OUTCOMES: Final[tuple[DecisionOutcome, ...]] = get_args(DecisionOutcome)

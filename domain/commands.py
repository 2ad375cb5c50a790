"""What the outside world asks of a case, once its message has been validated."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class RecordCaseEvent:
    """One inbound event: the v1 envelope with a payload of plain Python values.

    Dates in the payload are ``datetime.date``, timestamps timezone-aware
    ``datetime``; parties are dicts with the contract's field names.
    """

    event_id: UUID
    type: str
    application_number: str
    occurred_at: datetime
    source: str
    payload: Mapping[str, Any]


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"

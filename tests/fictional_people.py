"""The fictional applicant and sponsor the erasure tests erase, and their file's events as
a producer sends them: values rare enough that finding one in a dump can only mean a
leak (accents and hyphens test the encodings too)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

NUMBER = "F931020301"
APPLICANT = {
    "uci": "7316402958",
    "given_name": "Zéphyrine",
    "family_name": "Quaglieri-Ostrowska",
    "date_of_birth": "1931-02-03",
    "email": "zq.erasure-test@example.org",
}
SPONSOR = {
    "uci": "58204719",
    "given_name": "Wenceslas",
    "family_name": "Abernathy-Kowalczyk",
    "date_of_birth": "1934-05-06",
}
RECEIVED = {
    "category": "spouse",
    "received_on": "2024-02-01",
    "principal_applicant": APPLICANT,
    "sponsor": SPONSOR,
    "preferred_language": "fr",
}
LETTER = "Lettre pour Zéphyrine au sujet de sa santé"


def line(number: str, event_type: str, payload: dict[str, Any], event_id: str = "") -> bytes:
    """One event line of the file contract."""
    return json.dumps(
        {
            "event_id": event_id or str(uuid.uuid4()),
            "schema_version": 1,
            "type": event_type,
            "application_number": number,
            "occurred_at": datetime(2024, 2, 1, 9, tzinfo=UTC).isoformat(),
            "source": "gcms",
            "payload": payload,
        }
    ).encode()

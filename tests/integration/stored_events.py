"""Stored events that reach the log past the contract: what an older contract, a bug,
a manual repair or a corrupt row can leave there, for the readers that must survive them."""

from __future__ import annotations

import dataclasses
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from adapters.postgres.event_store import CaseStore
from domain import catalogue as t
from domain.application_number import case_id
from domain.case import Case, handle
from tests.unit.builders import cmd


def store_undecodable(store: CaseStore, application_number: str) -> None:
    """A row no event class can read (a corrupt state), written through the recorder."""
    store.recorder.insert_events(
        [StoredEvent(case_id(application_number), 1, get_topic(Case.Received), b"{not json")]
    )


def store_received_with(store: CaseStore, application_number: str, **payload: Any) -> None:
    """An application.received whose payload fields are overridden, past the contract."""
    command = cmd(t.RECEIVED, **payload)
    case, _ = handle(None, dataclasses.replace(command, application_number=application_number))
    store.save([case])


def store_nul_in_a_text_column(store: CaseStore, application_number: str) -> None:
    """An application.received whose language holds a NUL: PostgreSQL refuses it in
    case_parties' text column and in case_status' jsonb, a data error of this event alone.
    (A NUL in a name no longer reaches any table: case_parties keeps only its index.)"""
    store_received_with(store, application_number, preferred_language="f\x00r")

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
from tests.unit.builders import cmd, person


def store_bypassing_the_contract(store: CaseStore, application_number: str, **party: Any) -> None:
    """An application.received written straight through the store, as an older contract,
    a bug or a manual repair could have: nothing checked it on the way in."""
    command = cmd(t.RECEIVED, principal_applicant=person(**party))
    case, _ = handle(None, dataclasses.replace(command, application_number=application_number))
    store.save([case])


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

"""projections.failures: one classification of database errors, raw or wrapped by
eventsourcing's datastore (which re-raises each psycopg error as its own kind)."""

from __future__ import annotations

import psycopg
import pytest
from eventsourcing import persistence
from psycopg_pool import PoolTimeout

from projections.failures import error_text, from_the_event, unavailable


def _wrapped(kind: type[persistence.PersistenceError], cause: psycopg.Error) -> Exception:
    error = kind(str(cause))
    error.__cause__ = cause
    return error


LOST = psycopg.OperationalError("server closed the connection unexpectedly")
TOO_LARGE = psycopg.errors.ProgramLimitExceeded("index row size exceeds maximum")
NO_TABLE = psycopg.errors.UndefinedTable("relation does not exist")


@pytest.mark.parametrize(
    "error",
    [
        LOST,
        psycopg.InterfaceError("the connection is closed"),
        _wrapped(persistence.OperationalError, LOST),
        _wrapped(persistence.InterfaceError, psycopg.InterfaceError("closed")),
        _wrapped(persistence.OperationalError, PoolTimeout("no connection after 1.00 sec")),
    ],
    ids=["psycopg", "psycopg-interface", "wrapped", "wrapped-interface", "pool-timeout"],
)
def test_the_database_away_is_unavailable_and_not_the_events_fault(error: Exception) -> None:
    assert unavailable(error)
    assert not from_the_event(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a handler bug"),
        psycopg.DataError("invalid input syntax"),
        psycopg.errors.UniqueViolation("duplicate key"),
        TOO_LARGE,
        _wrapped(persistence.OperationalError, TOO_LARGE),
        _wrapped(persistence.IntegrityError, psycopg.errors.UniqueViolation("duplicate key")),
    ],
    ids=["handler", "data", "unique", "too-large", "wrapped-too-large", "wrapped-unique"],
)
def test_what_the_event_causes_is_never_an_outage(error: Exception) -> None:
    assert from_the_event(error)
    assert not unavailable(error)


@pytest.mark.parametrize(
    "error", [NO_TABLE, _wrapped(persistence.ProgrammingError, NO_TABLE)], ids=["raw", "wrapped"]
)
def test_a_fault_of_the_database_is_neither(error: Exception) -> None:
    assert not from_the_event(error)
    assert not unavailable(error)


def test_error_text_names_the_kind_never_the_message() -> None:
    assert error_text(psycopg.errors.UniqueViolation("Key (name)=(Lambert)")) == (
        "UniqueViolation (SQLSTATE 23505)"
    )
    try:
        raise ValueError("born 1990-06-01")
    except ValueError as e:
        text = error_text(e)
    assert text.startswith("ValueError in test_error_text_names_the_kind_never_the_message")
    assert "1990" not in text

"""One classification of database failures, for the read side and the write side.

Three kinds of error reach a projector, a rebuild or a consumer:

- the database is away (a lost connection, a restart, a pool that cannot connect):
  ``unavailable``; nothing was committed, so retry later from the stored positions;
- the event's data is refused (a value the database rejects, a duplicate key, a value
  too large for an index) or the code applying it raised: ``from_the_event``;
  dead-letter that event and go on;
- anything else is a fault of the database itself (a missing table or privilege):
  no reason to dead-letter every event that follows, nor to retry blindly.

eventsourcing's datastore re-raises each psycopg error as its own kind, with the
original as ``__cause__``; the same error is classified the same way either way.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from eventsourcing import persistence

# ProgramLimitExceeded (SQLSTATE class 54: a value too large for an index) is an
# OperationalError to psycopg, like a lost connection, but one event's value causes it.
_REFUSED = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded)
_AWAY = (
    persistence.OperationalError,
    persistence.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
_DATABASE = (psycopg.Error, persistence.PersistenceError)


def _unwrapped(error: BaseException) -> BaseException:
    """psycopg's error behind eventsourcing's, or ``error`` itself."""
    if isinstance(error, persistence.PersistenceError) and isinstance(
        error.__cause__, psycopg.Error
    ):
        return error.__cause__
    return error


def refused(error: BaseException) -> bool:
    """Whether the database refused a value of the event (its data, not the database, is wrong)."""
    return isinstance(_unwrapped(error), _REFUSED)


def from_the_event(error: BaseException) -> bool:
    """Whether ``error`` comes from the event applied (dead-letter it and go on), not
    from the database (a lost connection, a missing table: halt or retry)."""
    return refused(error) or not isinstance(error, _DATABASE)


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database is away for now: retry later.

    A value the database refuses is never an outage, even where psycopg files it under
    OperationalError (SQLSTATE class 54, a value too large for an index): retrying it
    would loop for ever, so the projector dead-letters the event and the write side
    lets the error through (the contract's size limits keep it out of the log)."""
    return isinstance(error, _AWAY) and not refused(error)


_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with the characters a column or a terminal should not hold replaced by '?'."""
    return _UNSTORABLE.sub("?", text)


def error_text(error: BaseException) -> str:
    """What to store and show of an error: its kind and where it arose, never its
    message, which may quote the event's data (a name, a date of birth). A database
    error is named by its SQLSTATE; psycopg's own client-side texts are fixed ones."""
    if isinstance(error, psycopg.Error):
        if error.sqlstate:
            return f"{type(error).__name__} (SQLSTATE {error.sqlstate})"
        return printable(f"{type(error).__name__}: {error}")[:500]
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return type(error).__name__
    code = tb.tb_frame.f_code
    return f"{type(error).__name__} in {code.co_qualname} ({Path(code.co_filename).name})"

"""Bounded retention of dead letters' raw input (`casetrack project` runs it hourly,
through adapters.chores.Every).

A rejected line or message is kept raw so that an operator can read and retry it, but it
may hold personal data that the log itself would have sealed. So the raw bytes are kept
CASETRACK_DEAD_LETTER_RAW_DAYS days (30 by default) and then dropped, leaving the dead
letter's reason, position and checksum; an erasure drops those that mention the person
at once (adapters.privacy.erasure). A failure is logged and tried again next hour: it
never stops the projections.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from adapters.postgres.dead_letters import DeadLetters

log = structlog.get_logger(__name__)

EVERY = 3600.0


def expire_raw_input(dead_letters: DeadLetters, keep: timedelta) -> None:
    try:
        dropped = dead_letters.drop_older_than(keep)
    except Exception as error:  # the views must keep serving; retried next hour
        log.error("dead letters' raw input not expired", error=type(error).__name__)
        return
    if dropped:
        log.info("dead letters' raw input expired", dropped=dropped, days=keep.days)

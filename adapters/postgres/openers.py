"""Openers of the case store for the read side, which cannot construct one itself.

Top-level functions of ``(url, schema)``, so that they pickle: a rebuild's worker
processes and the projection daemon receive one (projections.ports.Opener).
"""

from __future__ import annotations

import psycopg

from adapters.postgres.event_store import CaseStore


def open_case_store(url: str, schema: str) -> CaseStore:
    """The case store, once the database answers.

    A store connects as it is made, and one that failed to connect leaves its pool
    open, reconnecting, out of reach: a plain connection tries first, so an outage
    raises here (psycopg's OperationalError) with nothing left behind.
    """
    psycopg.connect(url, connect_timeout=10).close()
    return CaseStore(url, schema)

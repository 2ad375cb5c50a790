"""The operator's commands on webhook deliveries, in one transaction each (the SQL is
the outbox's, projections/notify_outbox, and the endpoints', webhooks_store)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from adapters.postgres.webhooks_store import EndpointHealth
from projections.notify_outbox import Outbox


def deliveries(url: str, schema: str, state: str | None, limit: int) -> list[dict[str, Any]]:
    with (
        psycopg.connect(url, row_factory=dict_row) as conn,
        conn.transaction(),
        conn.cursor() as curs,
    ):
        return Outbox(schema).deliveries(curs, state, limit)


def redeliver(url: str, schema: str, delivery_id: int) -> bool:
    """Pending again from now, its endpoint enabled again; False when there is no such
    delivery."""
    with (
        psycopg.connect(url, row_factory=dict_row) as conn,
        conn.transaction(),
        conn.cursor() as curs,
    ):
        endpoint = Outbox(schema).redeliver(curs, delivery_id)
        if endpoint is None:
            return False
        EndpointHealth(schema).enable(curs, endpoint)
    return True

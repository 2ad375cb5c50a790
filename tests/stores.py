"""What tests do with a store beyond its API: a scratch schema of their own, and SQL on
the store's schema in one call.

In ``rows`` and ``execute``, ``{schema}`` names the store's schema, ``{events}`` its
events table, and any other ``{name}`` the identifier given as ``name=``
(psycopg.sql formatting: a literal brace is doubled).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, LiteralString

from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from adapters.postgres.event_store import EVENTS_TABLE, CaseStore
from adapters.postgres.schema import drop_schema, init_schema
from tests.vault import TEST_VAULT


@contextmanager
def scratch_store(database_url: str) -> Iterator[CaseStore]:
    """A store on a schema of its own, created by `db init` and dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    init_schema(database_url, name)
    store = CaseStore(database_url, name, TEST_VAULT)
    try:
        store.check_schema()
        yield store
    finally:
        store.close()
        drop_schema(database_url, name)


def rows(
    store: CaseStore,
    query: LiteralString,
    params: Sequence[Any] | None = None,
    **names: str,
) -> list[DictRow]:
    """What ``query`` returns, read in a transaction of its own."""
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(_in_schema(store, query, names), params)
        return curs.fetchall()


def execute(
    store: CaseStore,
    statement: LiteralString,
    params: Sequence[Any] | None = None,
    **names: str,
) -> int:
    """Run ``statement`` and commit; the number of rows it touched."""
    with store.datastore.transaction(commit=True) as curs:
        curs.execute(_in_schema(store, statement, names), params)
        return curs.rowcount


def count(store: CaseStore, table: str, where: LiteralString = "TRUE") -> int:
    """How many rows of ``table`` (in the store's schema) ``where`` admits."""
    query = "SELECT count(*) AS n FROM {schema}.{table} WHERE " + where
    [row] = rows(store, query, table=table)
    return int(row["n"])


def _in_schema(store: CaseStore, query: LiteralString, names: dict[str, str]) -> Composed:
    identifiers = {name: Identifier(value) for name, value in names.items()}
    return SQL(query).format(
        schema=Identifier(store.schema), events=Identifier(EVENTS_TABLE), **identifiers
    )

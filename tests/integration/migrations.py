"""For the tests of `db init` on a schema an older release left: the schema as it was,
and `db init` run on it twice (the second run must change nothing)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import LiteralString

import psycopg
from psycopg.sql import SQL, Identifier

from adapters.postgres.schema import drop_schema, init_schema


@contextmanager
def older_schema(database_url: str, *statements: LiteralString) -> Iterator[str]:
    """A schema of its own made by ``statements`` (``{s}`` names it), dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(name)))
        for statement in statements:
            conn.execute(SQL(statement).format(s=Identifier(name)))
    try:
        yield name
    finally:
        drop_schema(database_url, name)


def init_twice(database_url: str, schema: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """`db init` on ``schema``, then again: after each, a connection for the checks."""
    for _ in range(2):
        init_schema(database_url, schema)
        with psycopg.connect(database_url) as conn:
            yield conn

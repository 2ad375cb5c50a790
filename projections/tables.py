"""Declared view tables: enough to create them, copy into them and swap them.

A projection declares its tables; the engine derives live and shadow names
from them (``case_status`` and ``case_status__next`` for a rebuild).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

Row = tuple[object, ...]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, SQL type)
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    # Holds rows only while a rebuild runs (empty in the live view): a release that adds
    # or changes it recreates it without refilling the view (adapters/postgres/schema).
    staging: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def ident(self, schema: str, suffix: str = "") -> Composed:
        return SQL("{}.{}").format(Identifier(schema), Identifier(self.name + suffix))

    def create(self, schema: str, suffix: str = "") -> list[Composed]:
        return [self.create_table(schema, suffix), *self.create_keys(schema, suffix)]

    def create_table(self, schema: str, suffix: str = "") -> Composed:
        """The table alone: a bulk copy into it runs faster with its keys added after."""
        columns = SQL(", ").join(
            SQL("{} {}").format(Identifier(name), SQL(type_))  # type_ is ours, not input
            for name, type_ in self.columns
        )
        return SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(self.ident(schema, suffix), columns)

    def create_keys(self, schema: str, suffix: str = "") -> list[Composed]:
        """Primary key and indexes, with unique names so shadow tables can coexist."""
        token = secrets.token_hex(4)
        table = self.ident(schema, suffix)
        statements = [
            SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
                table,
                Identifier(f"{self.name}_pk_{token}"),
                SQL(", ").join(map(Identifier, self.key)),
            )
        ]
        for number, columns in enumerate(self.indexes):
            statements.append(
                SQL("CREATE INDEX {} ON {} ({})").format(
                    Identifier(f"{self.name}_ix{number}_{token}"),
                    table,
                    SQL(", ").join(map(Identifier, columns)),
                )
            )
        return statements

    def insert_new(self, curs: Cursor[DictRow], ident: Composed, rows: list[Row]) -> None:
        """Insert ``rows`` into the table at ``ident``, skipping keys already there:
        re-applying a page after a crash writes nothing twice."""
        if not rows:
            return
        curs.executemany(
            SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING").format(
                ident,
                SQL(", ").join(map(Identifier, self.column_names)),
                SQL(", ").join(SQL("%s") for _ in self.columns),
                SQL(", ").join(map(Identifier, self.key)),
            ),
            rows,
        )

    def copy_statement(self, schema: str, suffix: str = "") -> Composed:
        return SQL("COPY {} ({}) FROM STDIN").format(
            self.ident(schema, suffix), SQL(", ").join(map(Identifier, self.column_names))
        )


def names(tables: tuple[Table, ...], schema: str, suffix: str = "") -> Mapping[str, Composed]:
    return {table.name: table.ident(schema, suffix) for table in tables}

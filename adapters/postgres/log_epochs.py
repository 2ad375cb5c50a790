"""The log_epochs table: each sanctioned rewrite of the log (domain/integrity/epochs.py).

A row is written when the rewrite begins (the previous epoch's last tree, the retired
checkpoints' digest) and advanced batch by batch (``through``: the last notification id
rewritten), so an interrupted `db init` resumes; ``finished_at`` and the signed transition
note close it. While a row is open, no checkpoint is signed and writers re-read every chain
link (EventHashes), since the rewrite changes them under their feet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from domain.integrity.epochs import FIRST_EPOCH

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.log_epochs ("
    " epoch integer PRIMARY KEY,"
    " reason text NOT NULL,"
    " previous_size bigint NOT NULL,"
    " previous_root bytea NOT NULL,"
    " retired integer NOT NULL,"
    " retired_sha256 bytea NOT NULL,"
    " through bigint NOT NULL DEFAULT 0,"
    " rewritten bigint NOT NULL DEFAULT 0,"
    " began_at timestamptz NOT NULL DEFAULT now(),"
    " finished_at timestamptz,"
    " note text)"
)


@dataclass(frozen=True)
class Epoch:
    epoch: int
    reason: str
    previous_size: int
    previous_root: bytes
    retired: int
    retired_sha256: bytes
    through: int
    rewritten: int
    began_at: datetime
    finished_at: datetime | None
    note: str | None


class LogEpochs:
    """The SQL of log_epochs in one schema, on the caller's cursor."""

    def __init__(self, schema: str) -> None:
        table = SQL("{}.log_epochs").format(Identifier(schema))
        self._all = SQL(
            "SELECT epoch, reason, previous_size, previous_root, retired, retired_sha256,"
            " through, rewritten, began_at, finished_at, note FROM {} ORDER BY epoch"
        ).format(table)
        self._begin = SQL(
            "INSERT INTO {} (epoch, reason, previous_size, previous_root, retired,"
            " retired_sha256) VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(table)
        self._advance = SQL(
            "UPDATE {} SET through = %s, rewritten = rewritten + %s WHERE epoch = %s"
        ).format(table)
        self._finish = SQL("UPDATE {} SET finished_at = now(), note = %s WHERE epoch = %s").format(
            table
        )
        self.state_columns = SQL(
            "(SELECT count(*) FROM {t}) AS epochs,"
            " (SELECT count(*) FROM {t} WHERE finished_at IS NULL) AS rewriting"
        ).format(t=table)
        """For a writer's query: how many epochs began, and whether one is unfinished."""

    def all(self, curs: Cursor[DictRow]) -> list[Epoch]:
        curs.execute(self._all)
        return [
            Epoch(**{**row, "previous_root": bytes(row["previous_root"]),
                     "retired_sha256": bytes(row["retired_sha256"])})
            for row in curs.fetchall()
        ]  # fmt: skip

    def current(self, curs: Cursor[DictRow]) -> int:
        """The epoch new checkpoints belong to (the latest begun)."""
        epochs = self.all(curs)
        return epochs[-1].epoch if epochs else FIRST_EPOCH

    def unfinished(self, curs: Cursor[DictRow]) -> Epoch | None:
        epochs = self.all(curs)
        return epochs[-1] if epochs and epochs[-1].finished_at is None else None

    def begin(
        self,
        curs: Cursor[DictRow],
        epoch: int,
        reason: str,
        previous: tuple[int, bytes],
        retired: tuple[int, bytes],
    ) -> None:
        curs.execute(self._begin, (epoch, reason, *previous, *retired))

    def advance(self, curs: Cursor[DictRow], epoch: int, through: int, rewritten: int) -> None:
        curs.execute(self._advance, (through, rewritten, epoch))

    def finish(self, curs: Cursor[DictRow], epoch: int, note: str | None) -> None:
        curs.execute(self._finish, (note, epoch))

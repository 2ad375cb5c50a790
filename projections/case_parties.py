"""The case_parties table: who is on each file, to match tracker registrations, without
their personal data.

One row per (case, role) from ``application.received``, holding keyed blind indexes
(domain.accounts.FileParty, made with the vault's key) of what registration compares:
UCI, family name and date of birth; email and membership id; for a representative, one
index per run of last words of their name (a bytea[]), which registration accepts as
their family name. Matching a registration is comparing its indexes with these, as exact
as comparing the values was. Given names are not kept, no registration asks for them.
The key is the server secret (CASETRACK_SECRET_KEY): a new secret leaves every index
stale until `casetrack projections rebuild case_parties`.

What must be shown or mailed (the email a code goes to, the family names a password must
not contain) is not kept here at all: the API reads it from the case in the log
(domain.accounts.email_on_file, family_name_on_file), which opens it with the person's
data key. Re-sealing those values here with the data key was the other way; it was not
chosen because a fresh nonce per seal would make a rebuild's rows differ from the live
ones (`projections rebuild --verify` compares them), and a second copy of each sealed
value is one more place that erasure must reach. With the values left in the log alone,
destroying a person's key is enough to make them unrecoverable, whatever this table
holds.

Erasure: a ``personal_data.erased`` event drops the rows of the roles it names, live and
in a rebuild (which folds the whole case); a party whose values already read as erased
(its key destroyed before this view reached its ``application.received``) gets no row.
Nothing here is ever logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from psycopg import AsyncCursor, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed

from domain.accounts import FileParty, PersonIndex, file_party
from domain.case import Case
from domain.personal_data import is_erased
from projections.event_log import Positioned
from projections.ports import ProjectionStore
from projections.projector import PerCaseReplayer
from projections.tables import Row, Table

TABLE = Table(
    name="case_parties",
    columns=(
        ("case_id", "uuid NOT NULL"),
        ("role", "text NOT NULL"),
        ("application_number", "text NOT NULL"),
        ("preferred_language", "text NOT NULL"),
        ("uci_index", "bytea"),
        ("family_name_indexes", "bytea[] NOT NULL"),
        ("date_of_birth_index", "bytea"),
        ("email_index", "bytea"),
        ("membership_id_index", "bytea"),
    ),
    key=("case_id", "role"),
    indexes=(("application_number",),),
)


class DateOfBirthUnreadable(ValueError):
    """A stored date of birth that is not a date (past the contract): the event is
    dead-lettered. Says so without the value."""

    def __init__(self) -> None:
        super().__init__("a date of birth on this file is not an ISO date")


def _parties(event: Case.Received, index: PersonIndex) -> list[FileParty]:
    """The file's people, indexed; those whose values read as erased are left out."""
    parties = []
    language = event.preferred_language
    for role in ("principal_applicant", "sponsor"):
        person: dict[str, Any] = getattr(event, role)
        if is_erased(person["uci"]):
            continue
        try:
            born = date.fromisoformat(person["date_of_birth"])
        except (TypeError, ValueError):
            raise DateOfBirthUnreadable() from None
        parties.append(
            file_party(
                index,
                role,
                language,
                uci=person["uci"],
                family_name=person["family_name"],
                date_of_birth=born,
                email=person.get("email"),
            )
        )
    rep = event.representative
    if rep is not None and not is_erased(rep["email"]):
        parties.append(
            file_party(
                index,
                "representative",
                language,
                email=rep["email"],
                name=rep["name"],
                membership_id=rep.get("membership_id"),
            )
        )
    return parties


def _row(p: Positioned, event: Case.Received, party: FileParty) -> Row:
    return (
        p.case_id,
        party.role,
        event.application_number,
        party.preferred_language,
        party.uci,
        list(party.family_names),
        party.date_of_birth,
        party.email,
        party.membership_id,
    )


class CasePartiesReplayer(PerCaseReplayer):
    def __init__(self, index: PersonIndex) -> None:
        self.index = index

    def case(self, events: Sequence[Positioned]) -> Iterable[tuple[str, Row]]:
        rows: dict[str, Row] = {}
        for p in events:
            event = p.event
            if isinstance(event, Case.Received):
                for party in _parties(event, self.index):
                    rows.setdefault(party.role, _row(p, event, party))
            elif isinstance(event, Case.PersonalDataErased):
                for role in event.subjects:
                    rows.pop(role, None)
        return ((TABLE.name, row) for row in rows.values())


_DELETE = "DELETE FROM {} WHERE case_id = %s AND role = ANY(%b)"


class CasePartiesProjection:
    """Needs the store's blind-index key: Projector and the replay take ``for_store``."""

    name = "case_parties"
    tables: tuple[Table, ...] = (TABLE,)

    def __init__(self, index: PersonIndex | None = None) -> None:
        self._index = index

    def for_store(self, store: ProjectionStore) -> CasePartiesProjection:
        return CasePartiesProjection(store.vault.blind_index)

    @property
    def index(self) -> PersonIndex:
        if self._index is None:
            raise RuntimeError("case_parties runs with its store's key: take for_store first")
        return self._index

    def replayer(self) -> CasePartiesReplayer:
        return CasePartiesReplayer(self.index)

    def apply(
        self, curs: Cursor[DictRow], tables: Mapping[str, Composed], page: Sequence[Positioned]
    ) -> None:
        """In the page's order: rows go in as a file arrives and out as its people are
        erased (the same page may hold both)."""
        ident = tables[TABLE.name]
        pending: list[Row] = []
        for p in page:
            event = p.event
            if isinstance(event, Case.Received):
                pending += [_row(p, event, party) for party in _parties(event, self.index)]
            elif isinstance(event, Case.PersonalDataErased):
                TABLE.insert_new(curs, ident, pending)
                pending = []
                curs.execute(SQL(_DELETE).format(ident), (p.case_id, list(event.subjects)))
        TABLE.insert_new(curs, ident, pending)


_SELECT = (
    "SELECT role, preferred_language, uci_index, family_name_indexes, date_of_birth_index,"
    " email_index, membership_id_index FROM {} WHERE application_number = %s"
)


async def read(curs: AsyncCursor[Any], schema: str, application_number: str) -> list[FileParty]:
    """The parties of a file, indexed (empty when there is no such file, or its people
    are erased)."""
    await curs.execute(SQL(_SELECT).format(TABLE.ident(schema)), (application_number,))
    return [
        FileParty(role, language, uci, tuple(names), born, email, membership)
        for role, language, uci, names, born, email, membership in await curs.fetchall()
    ]

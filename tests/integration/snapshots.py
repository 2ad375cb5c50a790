"""What runs are held to: the snapshot two runs over the same messages must agree on
(through Kafka or not, killed or not, the result is one), the run a file ingest gives,
and the status views a pure fold of the log gives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.postgres.event_store import CaseStore
from consumers.file_ingest import ingest_lines
from projections import case_status
from projections.case_status_table import CaseStatusProjection
from projections.projector import Projector
from tests.stores import rows, scratch_store

_DEAD_LETTERS = (
    "SELECT origin, position, error_kind, rule, field, raw FROM {schema}.dead_letters"
    " ORDER BY 1, 2, 3, 4, 5, 6"
)
_DEAD_LETTER_KINDS = (
    "SELECT error_kind, rule, field, raw FROM {schema}.dead_letters ORDER BY 1, 2, 3, 4"
)


def snapshot(store: CaseStore, *, origins: bool = True) -> dict[str, Any]:
    """The events, their ids, the dead letters and the status views (no timestamps).

    Without ``origins``, dead letters are compared by kind only, so a file
    ingest can serve as the reference of a Kafka run.
    """
    events = [
        tuple(r.values())
        for r in rows(
            store,
            "SELECT originator_id, originator_version, topic FROM {schema}.{events}"
            " ORDER BY originator_id, originator_version",
        )
    ]
    dead = [
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in r.values())
        for r in rows(store, _DEAD_LETTERS if origins else _DEAD_LETTER_KINDS)
    ]
    views = [
        (
            r["application_number"],
            {k: v for k, v in r["view"].items() if not k.endswith("last_updated")},
        )
        for r in rows(store, "SELECT application_number, view FROM {schema}.case_status ORDER BY 1")
    ]
    case_ids = sorted({case_id for case_id, *_ in events})
    event_ids = {
        str(case_id): [str(e.event_id) for e in store.stored_events(case_id)]
        for case_id in case_ids
    }
    return {"events": events, "event_ids": event_ids, "dead": dead, "views": views}


def project(store: CaseStore) -> None:
    Projector(store, CaseStatusProjection()).catch_up()


def file_reference(database_url: str, lines: Sequence[str]) -> dict[str, Any]:
    """The snapshot a file ingest of ``lines`` gives: what consuming them must give too."""
    with scratch_store(database_url) as store:
        ingest_lines((line.encode() + b"\n" for line in lines), "file:reference", store)
        project(store)
        return snapshot(store, origins=False)


def views(store: CaseStore, table: str = "case_status") -> dict[Any, Any]:
    """The status view of each case, as ``table`` holds it."""
    stored = rows(store, "SELECT case_id, view FROM {schema}.{table}", table=table)
    return {r["case_id"]: r["view"] for r in stored}


def folded_views(store: CaseStore) -> dict[Any, Any]:
    """The pure fold of every case's stored events: what the status views must hold."""
    ids = [
        r["originator_id"]
        for r in rows(store, "SELECT DISTINCT originator_id FROM {schema}.{events}")
    ]
    return {i: case_status.fold(store.stored_events(i)) for i in ids}

"""What projections need of the database, as Protocols the adapter side satisfies.

Projections are SQL by design: they work on a psycopg cursor inside transactions
of eventsourcing's PostgreSQL datastore. What they need beyond that, they find on
a ``ProjectionStore``: the schema, the events table and its notification channel,
the application's mapper to decode a stored event, the URL a listener or a
worker process connects to, and the vault's blind-index key (for a view that keeps
indexes of personal data in place of the values). ``adapters.postgres.event_store.CaseStore``
is one.

Worker processes open their own store with an ``Opener``: a top-level function, so
it pickles, given the URL and the schema. The composition root provides it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent
from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.accounts import PersonIndex


class Datastore(Protocol):
    """eventsourcing's PostgresDatastore: pooled connections, errors re-raised as its own."""

    def transaction(self, *, commit: bool = False) -> AbstractContextManager[Cursor[DictRow]]:
        """A cursor in a transaction, committed on exit only if ``commit``."""
        ...

    def get_connection(self) -> AbstractContextManager[Connection[DictRow]]:
        """A pooled connection (autocommit) for the caller's own transactions and cursors."""
        ...


class EventMapper(Protocol):
    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]: ...

    def prefetch(self, states: Iterable[bytes]) -> None:
        """Get ready to decode these stored payloads (fetch their personal-data keys in
        one go); decoding works without it, a round trip per sealed value."""
        ...


class EventApplication(Protocol):
    @property
    def mapper(self) -> EventMapper: ...


class EventsRecorder(Protocol):
    @property
    def events_table_name(self) -> str: ...

    @property
    def channel_name(self) -> str:
        """What writers NOTIFY on every insert."""
        ...


class Vault(Protocol):
    """adapters.privacy.vault.Vault, as far as projections need it."""

    @property
    def blind_index(self) -> PersonIndex: ...


class ProjectionStore(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def schema(self) -> str: ...

    @property
    def datastore(self) -> Datastore: ...

    @property
    def app(self) -> EventApplication: ...

    @property
    def recorder(self) -> EventsRecorder: ...

    @property
    def vault(self) -> Vault: ...


class ClosableStore(ProjectionStore, Protocol):
    """A store a long-running process opens itself and closes at the end."""

    def check_schema(self) -> None:
        """Raise unless the database has the tables (a fault, not an outage)."""
        ...

    def close(self) -> None: ...


Opener = Callable[[str, str], ProjectionStore]
"""``opener(url, schema)``: a ``ProjectionStore`` of its own for a worker process."""

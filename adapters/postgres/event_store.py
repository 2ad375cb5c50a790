"""The case event store: eventsourcing's PostgreSQL recorder plus the write side's tables.

Events, the dead letters of the same batch, the consumer offsets it moves and its
event_ids are written in one transaction (through the recorder's ``insert_events``),
so a crash never keeps one without the others. Each of those tables' SQL lives with
its owner (dead_letters.py, consumer_offsets.py, event_ids.py). ``CaseStore``
implements the write side's ports (consumers/ports.py): their methods raise
StoreUnavailable and ConcurrencyConflict, not the driver's errors (the auditors' and
tools' reads, ``stored_events`` and ``load``, let those through). Tables are created
and migrated only by ``casetrack db init``.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    Mapper,
    OperationalError,
    StoredEvent,
    Transcoding,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, get_topic, retry
from psycopg import Cursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from adapters.postgres.consumer_offsets import ConsumerOffsets
from adapters.postgres.data_keys import DataKeys, PersonErased
from adapters.postgres.dead_letters import DeadLetters
from adapters.postgres.event_codec import CaseEventMapper
from adapters.postgres.event_hashes import EventHashes
from adapters.postgres.event_ids import EventIds
from adapters.postgres.integrity_log import IntegrityLog
from adapters.postgres.unavailable import raises_store_unavailable
from adapters.privacy.blind_index import BlindIndex
from adapters.privacy.personal_codec import PersonalDataCodec
from adapters.privacy.vault import Vault
from consumers.ports import ConcurrencyConflict, ConsumerOffset, DeadLetter
from domain.case import Case
from domain.integrity.stored import Envelope, HashedEvent
from domain.personal_data import ERASED, personal_paths

APPLICATION_NAME = "casetrack"
EVENTS_TABLE = f"{APPLICATION_NAME}_events"


class SchemaMissing(RuntimeError):
    def __init__(
        self, message: str = "the database has no casetrack schema yet: run `casetrack db init`"
    ) -> None:
        super().__init__(message)


class SchemaOutdated(SchemaMissing):
    """An older release's tables: `db init` migrates them (a query would fail on a column
    this release renamed)."""

    def __init__(self) -> None:
        super().__init__(
            "the database schema is older than this casetrack: run `casetrack db init`"
        )


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class CaseRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder, with a faster insert and the write side's tables.

    Same guarantees as the library's insert: one transaction, the table
    locked in EXCLUSIVE mode before rows get notification ids (so commit
    order equals id order for readers), a NOTIFY for subscribers. Rows go in
    with binary COPY instead of an array of composites, which psycopg dumps
    slowly in Python; the batch's dead letters, offsets and event_ids share the
    transaction, written by their tables' owners, and so do the events' hashes
    (event_hashes.py: leaf, chain link and leaf index, under the same lock).
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.dead_letters = DeadLetters(datastore, datastore.schema)
        self.consumer_offsets = ConsumerOffsets(datastore, datastore.schema)
        self.event_ids = EventIds(datastore, datastore.schema)
        self.event_hashes = EventHashes(datastore.schema, events_table_name)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        dead_letters: Sequence[DeadLetter] = (),
        offsets: Sequence[ConsumerOffset] = (),
        event_ids: Sequence[tuple[UUID, UUID]] = (),
        envelopes: Sequence[Envelope] | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """Returns the events' notification ids, in the order of ``stored_events``."""
        notification_ids: list[int] = []
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            if dead_letters:
                self.dead_letters.insert(curs, dead_letters)
            if offsets:
                self.consumer_offsets.store(curs, offsets)
            if stored_events:
                self._lock_table(curs)
                self._notify_channel(curs)
                # Each event's leaf is computed as its row streams in: the server inserting
                # the rows before it is the slower side, so the hashing hides in its time.
                # (Two lists, not one of pairs: no tuple per event lives on for the garbage
                # collector to walk.)
                hashing = self.event_hashes.leaves_of(stored_events, envelopes)
                leaves: list[bytes] = []
                digests: list[bytes] = []
                with curs.copy(self._copy_statement) as copy:
                    copy.set_types(["uuid", "int8", "text", "bytea"])
                    for e, (leaf, fields) in zip(stored_events, hashing, strict=True):
                        copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))
                        leaves.append(leaf)
                        digests.append(fields)
                notification_ids = self._notification_ids(curs, stored_events)
                self.event_hashes.append(curs, stored_events, leaves, digests, notification_ids)
            if event_ids:  # a reused event_id breaks the primary key: IntegrityError
                self.event_ids.copy(curs, event_ids)
        if stored_events:
            self.event_hashes.committed()
        return notification_ids

    def _notification_ids(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent]
    ) -> list[int]:
        """The ids COPY gave ``stored_events`` (it returns nothing). COPY takes them from
        the sequence in row order, so if the first and the last rows sit at the ends of
        a range of len(stored_events) ids, the rows fill that range. Under the table lock
        they do (no other session takes ids); a sequence that hands out cached blocks
        could leave gaps, and then the ids are read back by key."""
        qualified = ".".join(
            '"' + name.replace('"', '""') + '"'
            for name in (self.datastore.schema, self.events_table_name)
        )
        curs.execute(self._ends_of_last_ids, (qualified, len(stored_events) - 1))
        ends = {r["notification_id"]: (r["originator_id"], r["originator_version"]) for r in curs}
        first, last = stored_events[0], stored_events[-1]
        if ends:
            top = max(ends)
            low = top - len(stored_events) + 1
            if ends.get(top) == (last.originator_id, last.originator_version) and ends.get(low) == (
                first.originator_id,
                first.originator_version,
            ):
                return list(range(low, top + 1))
        curs.execute(
            self._select_notification_ids,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
            ),
        )
        return [r["notification_id"] for r in curs.fetchall()]

    @property
    def _ends_of_last_ids(self) -> Composed:
        """The rows at the sequence's last id and at ``%s`` ids below it."""
        table = SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )
        return SQL(
            "WITH last AS (SELECT currval(pg_get_serial_sequence(%s, 'notification_id')) AS id)"
            " SELECT notification_id, originator_id, originator_version FROM {}"
            " WHERE notification_id IN ((SELECT id FROM last), (SELECT id FROM last) - %s)"
        ).format(table)

    @property
    def _select_notification_ids(self) -> Composed:
        return SQL(
            "SELECT e.notification_id FROM unnest(%b::uuid[], %b::int8[]) WITH ORDINALITY"
            " AS k(originator_id, originator_version, n) JOIN {}.{} e"
            " USING (originator_id, originator_version) ORDER BY k.n"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))

    @property
    def _copy_statement(self) -> Composed:
        return SQL(
            "COPY {}.{} (originator_id, originator_version, topic, state)"
            " FROM STDIN (FORMAT BINARY)"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))


# The whole URL, for CaseEvents.construct_factory (not an eventsourcing setting).
CONNINFO = "CASETRACK_CONNINFO"


def postgres_env(url: str, schema: str) -> dict[str, str]:
    """eventsourcing's settings for the server at ``url``, tables in ``schema``.

    eventsourcing reads only the five below of the URL's libpq parameters; the rest
    (sslmode, sslrootcert, sslcert, sslkey, application_name, target_session_attrs...)
    reach its connections through ``CONNINFO`` (CaseEvents.construct_factory)."""
    info = conninfo_to_dict(url)
    return {
        CONNINFO: url,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(info.get("port") or "5432"),
        "POSTGRES_USER": str(info.get("user") or getpass.getuser()),
        "POSTGRES_PASSWORD": str(info.get("password") or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "4",
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": "30",
        "POSTGRES_PRE_PING": "y",
        "CREATE_TABLE": "n",
    }


class CaseEvents(Application[UUID]):
    """The eventsourcing application that stores Case events, their personal values
    sealed with keys from ``data_keys`` (set by CaseStore, which owns the vault)."""

    name = APPLICATION_NAME
    mapper: CaseEventMapper
    data_keys: DataKeys
    blind_index: BlindIndex

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        """eventsourcing's factory, its datastore's pool connecting with the whole URL.

        PostgresDatastore passes only dbname, host, port, user and password to its pool
        (as keyword arguments), so a URL's sslmode=verify-full would be dropped there and
        libpq's default (prefer: encrypted if offered, the certificate not checked) used
        instead. The pool's ``conninfo`` (psycopg_pool's, empty as eventsourcing leaves
        it) takes the URL before the pool opens; the five keyword arguments, from the same
        URL, still win over it."""
        factory = super().construct_factory(env)
        conninfo = env.get(CONNINFO)
        if conninfo and isinstance(factory, PostgresFactory):
            factory.datastore.pool.conninfo = conninfo
        return factory

    def construct_mapper(self) -> Mapper[UUID]:
        return CaseEventMapper(transcoder=self.construct_transcoder())

    def load_keys(self, subjects: set[UUID]) -> dict[UUID, tuple[UUID, str, bytes | None]]:
        """subject id -> (its case, its role, its data key or None: destroyed), for the
        mapper's codec."""
        assert isinstance(self.factory, PostgresFactory)
        with self.factory.datastore.transaction(commit=False) as curs:
            return {
                k.subject_id: (k.case_id, k.role, k.key)
                for k in self.data_keys.by_id(curs, subjects).values()
            }

    def _sealing_keys(
        self, events: Sequence[Case.Event], cases: dict[UUID, Case]
    ) -> dict[tuple[UUID, str], tuple[UUID, bytes]]:
        """The (subject id, key) of every subject whose values these events hold, made
        for a new file's people (in a transaction of their own: a key whose events then
        fail to commit is only an unused key). A destroyed key raises PersonErased."""
        mapper = self.mapper
        wanted: dict[tuple[UUID, str], bytes | None] = {}
        for event in events:
            topic = get_topic(type(event))
            if not mapper.personal.holds_personal_data(topic):
                continue
            fields = vars(event)
            for owner, _holder, _field in personal_paths(fields, topic):
                key = (event.originator_id, owner)
                if key not in wanted:
                    wanted[key] = self._person(fields, owner, cases.get(event.originator_id))
        if not wanted:
            return {}
        assert isinstance(self.factory, PostgresFactory)
        with self.factory.datastore.transaction(commit=True) as curs:
            found = self.data_keys.subjects_for(
                curs, [(case, owner, person) for (case, owner), person in wanted.items()]
            )
        sealing: dict[tuple[UUID, str], tuple[UUID, bytes]] = {}
        for wanted_key in wanted:
            subject = found.get(wanted_key)  # missing: a person tombstoned meanwhile
            if subject is None or subject.key is None:
                raise PersonErased()
            sealing[wanted_key] = (subject.subject_id, subject.key)
        return sealing

    def _person(self, fields: dict[str, Any], owner: str, case: Case | None) -> bytes | None:
        """The blind index of who ``owner`` is, from the event or else its case."""
        held = fields.get(owner)
        if isinstance(held, dict):
            identity = held.get("uci") or held.get("email")
        else:
            party = getattr(case, owner, None) if case is not None else None
            identity = getattr(party, "uci", None) or getattr(party, "email", None)
        if not identity or identity == ERASED:
            return None
        return self.blind_index.person(str(identity))

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def construct_recorder(self) -> ApplicationRecorder:
        assert isinstance(self.factory, PostgresFactory)
        return CaseRecorder(self.factory.datastore, events_table_name=EVENTS_TABLE)

    def save_cases(self, cases: Iterable[Case], **kwargs: Any) -> None:
        """``Application.save`` for cases only: the library's version checks each object
        against runtime Protocols (about 15 µs each, a fifth of a batch's time)."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for case in cases:
            processing_event.events += case.collect_events()
            processing_event.aggregates[case.id] = case
        processing_event.saved_kwargs.update(kwargs)
        # The library types pending events by protocol; these are Case events, which carry
        # the event_id of the message they record.
        events = cast(list[Case.Event], processing_event.events)
        processing_event.saved_kwargs["event_ids"] = [(e.event_id, e.originator_id) for e in events]
        # What the leaves cover besides the stored row, so the recorder does not parse back
        # the payloads it was just given: the events are their own envelopes
        # (domain/integrity/stored.py).
        processing_event.saved_kwargs["envelopes"] = events
        mapper = self.mapper
        mapper.sealing = self._sealing_keys(
            events, cast(dict[UUID, Case], processing_event.aggregates)
        )
        try:
            recordings = self._record(processing_event)
        finally:
            mapper.sealing = {}
        self._take_snapshots(processing_event)
        self._notify(recordings)


class CaseStore:
    """Loads cases in bulk and saves a batch of them with its dead letters and offsets.

    Implements the write side's ports (consumers/ports.py: CaseRepository, IngestStore,
    KafkaStore, LagStore); its tables' owners are at hand for the rest
    (``dead_letters`` is the dead-letter publisher's outbox and the CLI's source).
    """

    def __init__(self, url: str, schema: str, vault: Vault) -> None:
        self.url = url
        self.vault = vault
        self.app = CaseEvents(env=postgres_env(url, schema))
        self.data_keys = DataKeys(schema, vault.kek, vault.previous_keks)
        self.app.data_keys = self.data_keys
        self.app.blind_index = vault.blind_index
        self.app.mapper.personal = PersonalDataCodec(self.app.load_keys)
        recorder = self.app.recorder
        assert isinstance(recorder, CaseRecorder)
        self.recorder = recorder
        self.datastore = recorder.datastore
        self.schema = schema
        self.dead_letters = recorder.dead_letters
        self.consumer_offsets = recorder.consumer_offsets
        self.event_ids = recorder.event_ids
        self.integrity = IntegrityLog(self.datastore, schema, EVENTS_TABLE, url)
        self._select_many = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {}.{}"
            " WHERE originator_id = ANY(%b) ORDER BY originator_id, originator_version"
        ).format(Identifier(schema), Identifier(EVENTS_TABLE))

    def close(self) -> None:
        self.app.close()

    def check_schema(self) -> None:
        """SchemaMissing before `db init`, SchemaOutdated when it is due again."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT to_regclass(%s) AS t, EXISTS (SELECT FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = 'dead_letters'"
                " AND column_name = 'position') AND to_regclass(%s) IS NOT NULL AS current",
                (f"{self.schema}.dead_letters", self.schema, f"{self.schema}.event_hashes"),
            )
            row = curs.fetchone()
        if row is None or row["t"] is None:
            raise SchemaMissing()
        if not row["current"]:
            raise SchemaOutdated()
        self.datastore.register_type_adapters()

    def load(self, ids: Iterable[UUID]) -> dict[UUID, Case]:
        """Replay every given case that exists, in one query; a case that cannot be read raises."""
        cases, unreadable = self.load_readable(ids)
        for error in unreadable.values():
            raise error
        return cases

    @raises_store_unavailable
    def load_readable(self, ids: Iterable[UUID]) -> tuple[dict[UUID, Case], dict[UUID, Exception]]:
        """Replay every given case that exists, in one query: (the cases, and for each case
        whose stored events do not decode or replay, the error). A corrupt row is a data
        error of its case alone: the writers of every other case must go on."""
        wanted = list(ids)
        if not wanted:
            return {}, {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_many, (wanted,))
            rows = curs.fetchall()
        self.app.mapper.prefetch(bytes(row["state"]) for row in rows)
        cases: dict[UUID, Case] = {}
        unreadable: dict[UUID, Exception] = {}
        to_domain_event = self.app.mapper.to_domain_event
        for row in rows:
            cid = row["originator_id"]
            if cid in unreadable:
                continue
            try:
                event = to_domain_event(
                    StoredEvent(
                        originator_id=cid,
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                )
                # The mapper is typed for any domain event; this table holds Case events.
                case = cast(Case.Event, event).mutate(cases.get(cid))
                assert case is not None  # a Case event never discards its case
                cases[cid] = case
            except Exception as e:
                unreadable[cid] = e
                cases.pop(cid, None)
        if cases:
            # An erasure that destroyed keys and died before its personal_data.erased
            # event: the case counts as erased all the same, so its rules refuse what
            # would need those keys instead of the writer retrying for ever.
            with self.datastore.transaction(commit=False) as curs:
                for cid, roles in self.data_keys.destroyed_roles(curs, list(cases)).items():
                    cases[cid].keys_destroyed = roles
        return cases, unreadable

    def stored_events(self, case_id: UUID) -> list[Case.Event]:
        return [event for event, _ in self.audited_events(case_id)]

    def lift_tombstone(self, person: str) -> bool:
        """Accept new files for an erased person again (their erased data stays erased)."""
        with self.datastore.transaction(commit=True) as curs:
            return self.data_keys.lift(curs, self.vault.blind_index.person(person))

    def rewrap_data_keys(self) -> int:
        """`casetrack privacy rotate-kek`: every live key wrapped with the current KEK."""
        with self.datastore.get_connection() as conn:
            return self.data_keys.rewrap(conn)

    @raises_store_unavailable
    def erased_people(self, people: Sequence[str]) -> set[str]:
        """Those of ``people`` (UCIs, representatives' emails) who were erased
        (tombstoned): a new file for one of them must not bring their data back."""
        by_index = {self.vault.blind_index.person(p): p for p in people}
        with self.datastore.transaction(commit=False) as curs:
            return {by_index[p] for p in self.data_keys.erased_people(curs, list(by_index))}

    def audited_events(self, case_id: UUID) -> list[tuple[Case.Event, HashedEvent | None]]:
        """``stored_events`` with each event's hashes (None where it has none), from one
        read: what the auditors' API shows."""
        log = self.integrity.case_log(case_id)
        self.app.mapper.prefetch(row.state for row, _ in log)
        return [
            (
                cast(
                    Case.Event,
                    self.app.mapper.to_domain_event(
                        StoredEvent(row.case_id, row.case_version, row.topic, row.state)
                    ),
                ),
                hashed,
            )
            for row, hashed in log
        ]

    @raises_store_unavailable
    def save(
        self,
        cases: Iterable[Case],
        dead_letters: Sequence[DeadLetter] = (),
        offsets: Sequence[ConsumerOffset] = (),
    ) -> None:
        """One transaction: every pending event of ``cases``, the dead letters, the offsets."""
        try:
            self.app.save_cases(cases, dead_letters=dead_letters, offsets=offsets)
        except (IntegrityError, PersonErased) as e:
            # PersonErased: an erasure destroyed a key after these cases were read; read
            # again, they hold its personal_data.erased event, and their rules refuse.
            raise ConcurrencyConflict(str(e)) from None

    def event_id_owners(self, event_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        """event_id -> the case that holds it, for those of ``event_ids`` already stored."""
        return self.event_ids.owners(event_ids)

    def stored_offsets(self, group: str, topic: str) -> dict[int, int]:
        """partition -> next offset to read, as last committed with the events."""
        return self.consumer_offsets.stored_offsets(group, topic)

    def stored_topic_ids(self, group: str, topic: str) -> dict[int, UUID | None]:
        """partition -> the topic id of the log its stored offset was read from."""
        return self.consumer_offsets.stored_topic_ids(group, topic)

    def rewind_offset(self, offset: ConsumerOffset, expected: int) -> bool:
        """See ConsumerOffsets.rewind: the one move backwards, for a replaced log."""
        return self.consumer_offsets.rewind(offset, expected)

    def dead_lettered(self, origin: str, positions: Sequence[tuple[int, bytes]]) -> set[int]:
        """Positions of ``origin`` an earlier (interrupted) run already dead-lettered,
        with unchanged content."""
        return self.dead_letters.dead_lettered(origin, positions)

    def unpublished_dead_letters(self, topic: str) -> int:
        """Kafka dead letters read from ``topic`` not yet on the dead-letter topic."""
        return self.dead_letters.unpublished(topic)

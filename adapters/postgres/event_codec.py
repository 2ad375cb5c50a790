"""Fast (de)serialisation of stored case events, in eventsourcing's JSON format.

The library's JSONTranscoder calls a Python hook for every JSON object, which
dominates replay time. Case events are flat: typed values (UUID, datetime,
date) only appear as top-level fields, so we encode and decode with orjson
and convert those fields in one shallow pass. The bytes stay what the
library's own transcoder writes and reads, with the same ``_type_``/``_data_``
markers; personal values are sealed tokens in place of their text
(adapters.privacy.field_cipher).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from functools import partial
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from adapters.privacy.personal_codec import PersonalDataCodec


def _encode_value(value: Any) -> Any:
    if isinstance(value, UUID):
        return {"_type_": "uuid_hex", "_data_": value.hex}
    if isinstance(value, datetime):
        return {"_type_": "datetime_iso", "_data_": value.isoformat()}
    if isinstance(value, date):
        return {"_type_": "date_iso", "_data_": value.isoformat()}
    return value


_PLAIN = frozenset({str, int, float, bool, type(None), list, dict})  # stored as they are

_DECODERS: dict[str, Callable[[str], Any]] = {
    "uuid_hex": UUID,
    "datetime_iso": datetime.fromisoformat,
    "date_iso": date.fromisoformat,
}


def class_version(domain_event: DomainEventProtocol[UUID]) -> int:
    """The version an event is stored at: its class's, 1 when it has none."""
    return int(getattr(type(domain_event), "class_version", 1))


class CaseEventMapper(Mapper[UUID]):
    """A Mapper for flat events whose personal values are sealed (adapters.privacy):
    ``personal`` seals them as events are stored, with the keys the writer put in
    ``sealing`` for its batch ((case id, subject) -> (subject id, key)), and opens them
    as they are read. No eventsourcing cipher or compressor: the rest stays readable."""

    personal: PersonalDataCodec
    sealing: Mapping[tuple[UUID, str], tuple[UUID, bytes]] = {}

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        version = class_version(domain_event)
        if version > 1:
            state["class_version"] = version
        encoded = {k: v if type(v) in _PLAIN else _encode_value(v) for k, v in state.items()}
        topic = get_topic(type(domain_event))
        if self.personal.holds_personal_data(topic):
            key_of = partial(self._sealing_key, originator_id)
            self.personal.seal(encoded, topic, originator_id, originator_version, key_of)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=orjson.dumps(encoded),
        )

    def _sealing_key(self, case: UUID, subject: str) -> tuple[UUID, bytes]:
        try:
            return self.sealing[(case, subject)]
        except KeyError:
            raise LookupError(
                f"no data key for the {subject} of case {case}: personal data is sealed only"
                " with the keys its writer fetched for the batch"
            ) from None

    def prefetch(self, states: Iterable[bytes]) -> None:
        """Fetch the keys that the events about to be decoded were sealed with."""
        self.personal.prefetch(states)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        state = orjson.loads(stored_event.state)
        if self.personal.holds_personal_data(stored_event.topic):
            originator = stored_event.originator_id
            self.personal.open(
                state,
                stored_event.topic,
                originator if isinstance(originator, UUID) else UUID(originator),
                stored_event.originator_version,
            )
        typed = [
            (k, v) for k, v in state.items() if type(v) is dict and len(v) == 2 and "_type_" in v
        ]
        for key, value in typed:  # a few per event; the other values stay as parsed
            state[key] = _DECODERS[value["_type_"]](value["_data_"])
        originator_id = stored_event.originator_id
        state["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        )
        state["originator_version"] = stored_event.originator_version
        current = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < current:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event

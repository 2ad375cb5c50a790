"""Any valid event, sent as a CloudEvent by the CloudEvents SDK in structured mode (with
and without its content-type header) or in the Kafka binary mode, is the command its
v1 envelope gives; an id that is not a UUID gives one event_id, whatever the mode."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.file_ingest import parse_line
from domain import catalogue as t
from domain.commands import RecordCaseEvent
from tests.cloud_event_producer import binary, cloud_event, headers, structured
from tests.property.strategies import (
    application_numbers,
    aware_datetimes,
    encode,
    event_dict,
    examples,
    payloads,
)

system_names = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(t.EVENT_TYPES))
    return event_dict(
        draw(st.uuids()),
        event_type,
        draw(application_numbers),
        draw(aware_datetimes),
        draw(system_names),
        draw(payloads(event_type)),
    )


def sent(event: Any) -> list[object]:
    s, b = structured(event), binary(event)
    return [parse_line(s.value, headers(s)), parse_line(s.value), parse_line(b.value, headers(b))]


@settings(max_examples=examples(200), deadline=None)
@given(envelopes(), st.booleans(), st.booleans())
def test_both_modes_give_the_command_of_the_v1_envelope(
    envelope: dict[str, Any], plain_type: bool, with_subject: bool
) -> None:
    expected = parse_line(encode(envelope))
    assert isinstance(expected, RecordCaseEvent), expected
    subject = {} if with_subject else {"subject": None}  # then the partition key says it
    event = cloud_event(envelope, plain_type=plain_type, **subject)
    assert sent(event) == [expected] * 3


@settings(max_examples=examples(100), deadline=None)
@given(envelopes(), st.text(min_size=1, max_size=40).filter(lambda s: s.isprintable()))
def test_an_id_that_is_not_a_uuid_gives_one_event_id_in_every_mode(
    envelope: dict[str, Any], event_id: str
) -> None:
    results = sent(cloud_event(envelope, id=event_id)) + sent(cloud_event(envelope, id=event_id))
    assert all(isinstance(r, RecordCaseEvent) for r in results), results
    ids = {r.event_id for r in results if isinstance(r, RecordCaseEvent)}
    assert len(ids) == 1
    (found,) = ids
    assert isinstance(found, UUID)

"""Partition positions against a fake store and a fake Kafka client (docs/kafka.md)."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from consumers.kafka.log_identity import MetadataPending
from consumers.kafka.positions import METADATA_WAIT, PartitionPositions
from consumers.kafka.stats import ConsumeStats
from consumers.ports import ConsumerOffset
from tests.unit.fakes import FakeClient, FakeClock, FakeRecord, FakeStore

GROUP, TOPIC = "group", "events"
OLD_LOG, NEW_LOG = uuid4(), uuid4()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def client() -> FakeClient:
    return FakeClient(TOPIC, starts={0: 0, 1: 0}, ends={0: 100, 1: 100})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def positions(store: FakeStore, clock: FakeClock) -> PartitionPositions:
    return PartitionPositions(store, GROUP, TOPIC, ConsumeStats(), clock=clock)


def _stored(store: FakeStore, partition: int, offset: int, topic_id: UUID | None = None) -> None:
    store.store_offset(ConsumerOffset(GROUP, TOPIC, partition, offset, topic_id))


def _given(client: FakeClient, positions: PartitionPositions, *partitions: int) -> None:
    """The group gives this member ``partitions`` (inside a poll, on the network thread)."""
    tps = {client.tp(p) for p in partitions}
    client.assigned |= tps
    positions.assigned(client, tps)


def _placed(
    store: FakeStore,
    client: FakeClient,
    positions: PartitionPositions,
    stored: dict[int, int],
    log_id: UUID | None = None,
) -> None:
    """The ``stored`` offsets (partition: offset) stored in log ``log_id``, then partitions
    0 and 1 assigned and synced at their stored offsets, in that log."""
    for partition, offset in stored.items():
        _stored(store, partition, offset, log_id)
    _given(client, positions, 0, 1)
    positions.sync(client, lambda: log_id)
    assert not client.paused


# ---------------------------------------------------------------- placing from the store


def test_assigned_partitions_wait_paused_until_synced_to_their_stored_offsets(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _stored(store, 0, 42)
    _given(client, positions, 0, 1)
    assert client.paused == {client.tp(0), client.tp(1)}
    assert positions.sync_due() and positions.offsets() == {}

    positions.sync(client, lambda: None)

    assert client.paused == set()
    assert client.fetch_at == {client.tp(0): 42, client.tp(1): 0}  # 1: nothing stored, log start
    assert positions.offsets() == {0: 42}
    assert not positions.sync_due()


def test_partitions_wait_for_metadata_fresher_than_the_last_lost_connection(
    store: FakeStore, client: FakeClient, positions: PartitionPositions, clock: FakeClock
) -> None:
    _stored(store, 0, 42)
    _given(client, positions, 0)

    def pending() -> UUID | None:
        raise MetadataPending(TOPIC)

    positions.sync(client, pending)
    assert client.paused == {client.tp(0)} and positions.offsets() == {}
    assert not positions.sync_due()
    clock.now += METADATA_WAIT
    assert positions.sync_due()
    positions.sync(client, lambda: None)
    assert positions.offsets() == {0: 42} and not client.paused


def test_revoked_partitions_are_forgotten(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _placed(store, client, positions, {0: 42, 1: 7})
    positions.revoked({client.tp(0)})
    assert positions.offsets() == {1: 7}


def test_a_failed_batch_holds_every_partition_at_its_position_until_the_retry_is_due(
    store: FakeStore, client: FakeClient, positions: PartitionPositions, clock: FakeClock
) -> None:
    _placed(store, client, positions, {0: 42, 1: 7})
    client.fetch_at = {client.tp(0): 60, client.tp(1): 9}  # fetched ahead of the failed batch

    positions.hold(client, 2.0)

    assert client.paused == {client.tp(0), client.tp(1)}
    assert client.fetch_at == {client.tp(0): 42, client.tp(1): 7}
    assert not positions.sync_due()
    clock.now += 2.0
    assert positions.sync_due()
    _stored(store, 0, 50)  # another member stored more meanwhile
    positions.sync(client, lambda: None)
    assert positions.offsets() == {0: 50, 1: 7} and not client.paused


# ---------------------------------------------------------------- redelivered offsets


def test_records_below_the_stored_offset_are_skipped(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _placed(store, client, positions, {0: 10})
    records = [FakeRecord(n) for n in range(8, 13)]
    fresh = positions.writable(client, client.tp(0), records, 10, None)
    assert [r.offset for r in fresh] == [10, 11, 12]
    assert positions.stats.redelivered == 2


def test_records_all_below_the_stored_offset_move_the_position_to_it(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _placed(store, client, positions, {0: 10})
    # Another member stored up to 30 since: everything fetched here is a redelivery.
    fresh = positions.writable(client, client.tp(0), [FakeRecord(10), FakeRecord(11)], 30, None)
    assert fresh == []
    assert client.fetch_at[client.tp(0)] == 30 and positions.offsets()[0] == 30
    assert positions.stats.redelivered == 2


def test_records_of_a_partition_not_yet_synced_are_not_written(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _given(client, positions, 0)
    assert positions.writable(client, client.tp(0), [FakeRecord(0)], None, None) == []


def test_a_written_batch_stores_its_next_offset_in_the_log_it_was_read_from(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _placed(store, client, positions, {0: 10}, NEW_LOG)
    tp = client.tp(0)
    assert positions.writable(client, tp, [FakeRecord(10)], 10, NEW_LOG) == [FakeRecord(10)]
    assert positions.next_offset(tp, 11) == ConsumerOffset(GROUP, TOPIC, 0, 11, NEW_LOG)
    positions.advanced(tp, 11)
    assert positions.offsets()[0] == 11


def test_records_fetched_before_fresh_metadata_are_fetched_again(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _placed(store, client, positions, {0: 10}, NEW_LOG)
    tp = client.tp(0)
    client.fetch_at[tp] = 13
    assert positions.writable(client, tp, [FakeRecord(10)], 10, MetadataPending(TOPIC)) == []
    assert client.fetch_at[tp] == 10 and store.rewinds == []


# ---------------------------------------------------------------- a replaced log


def test_a_stored_offset_of_a_replaced_log_is_rewound_to_the_log_start_on_sync(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    client.starts[0] = 3
    _stored(store, 0, 500, OLD_LOG)
    _given(client, positions, 0)
    positions.sync(client, lambda: NEW_LOG)
    assert store.rewinds == [(ConsumerOffset(GROUP, TOPIC, 0, 3, NEW_LOG), 500)]
    assert store.stored_offsets(GROUP, TOPIC) == {0: 3}
    assert store.stored_topic_ids(GROUP, TOPIC) == {0: NEW_LOG}
    assert client.fetch_at[client.tp(0)] == 3 and not client.paused
    assert positions.offsets() == {0: 3}
    assert positions.stats.log_replaced == 1


def test_records_from_a_replaced_log_are_not_written_and_the_partition_is_reread(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _placed(store, client, positions, {0: 40}, OLD_LOG)
    tp = client.tp(0)
    assert positions.writable(client, tp, [FakeRecord(40)], 40, NEW_LOG) == []
    assert store.rewinds == [(ConsumerOffset(GROUP, TOPIC, 0, 0, NEW_LOG), 40)]
    assert client.fetch_at[tp] == 0 and positions.offsets()[0] == 0
    assert positions.next_offset(tp, 1).topic_id == NEW_LOG


def test_a_rewind_lost_to_another_member_takes_the_position_from_the_store_again(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _stored(store, 0, 500, OLD_LOG)
    _given(client, positions, 0)
    # Another member rewinds and stores a batch of the new log first.
    store.before_rewind = lambda: _stored(store, 0, 12, NEW_LOG)
    positions.sync(client, lambda: NEW_LOG)
    assert client.paused == {client.tp(0)} and positions.offsets() == {}
    assert positions.sync_due()
    positions.sync(client, lambda: NEW_LOG)
    assert client.fetch_at[client.tp(0)] == 12 and not client.paused
    assert positions.offsets() == {0: 12}
    assert store.stored_offsets(GROUP, TOPIC) == {0: 12}


# ---------------------------------------------------------------- out of range


def test_an_offset_beyond_the_log_end_is_rewound_to_the_log_start(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    client.starts[0], client.ends[0] = 2, 20
    _placed(store, client, positions, {0: 50})
    positions.out_of_range(client, client.tp(0), 50)
    assert store.rewinds == [(ConsumerOffset(GROUP, TOPIC, 0, 2), 50)]
    assert store.stored_offsets(GROUP, TOPIC) == {0: 2}
    assert client.fetch_at[client.tp(0)] == 2 and positions.offsets()[0] == 2
    assert positions.stats.beyond_end == 1


def test_an_offset_before_the_log_start_goes_on_from_the_start_without_a_rewind(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    client.starts[0] = 30
    _placed(store, client, positions, {0: 10})
    positions.out_of_range(client, client.tp(0), 10)
    assert store.rewinds == [] and store.stored_offsets(GROUP, TOPIC) == {0: 10}
    assert client.fetch_at[client.tp(0)] == 30 and positions.offsets()[0] == 30
    assert positions.stats.beyond_end == 0


def test_an_offset_within_the_log_is_fetched_again(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _placed(store, client, positions, {0: 10})
    client.fetch_at[client.tp(0)] = 99
    positions.out_of_range(client, client.tp(0), 10)  # raced with new messages arriving
    assert client.fetch_at[client.tp(0)] == 10 and store.rewinds == []


def test_an_out_of_range_rewind_lost_to_another_member_waits_for_the_store(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    client.ends[0] = 20
    _placed(store, client, positions, {0: 50})
    store.before_rewind = lambda: _stored(store, 0, 5)
    positions.out_of_range(client, client.tp(0), 50)
    assert client.paused == {client.tp(0)} and 0 not in positions.offsets()
    assert positions.sync_due()
    positions.sync(client, lambda: None)
    assert positions.offsets()[0] == 5 and client.fetch_at[client.tp(0)] == 5


def test_a_high_watermark_below_the_position_on_two_polls_running_is_beyond_the_end(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    client.ends[0] = 20
    _placed(store, client, positions, {0: 50, 1: 5})
    client.highwaters = {client.tp(0): 20, client.tp(1): 20}
    positions.check_log_ends(client, {})
    assert store.rewinds == []  # once may be a watermark from before a seek
    positions.check_log_ends(client, {})
    assert store.rewinds == [(ConsumerOffset(GROUP, TOPIC, 0, 0), 50)]
    assert positions.offsets() == {0: 0, 1: 5}


def test_a_poll_with_records_clears_the_suspicion(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _placed(store, client, positions, {0: 50})
    client.highwaters = {client.tp(0): 20}
    positions.check_log_ends(client, {})
    positions.check_log_ends(client, {client.tp(0): [FakeRecord(50)]})
    positions.check_log_ends(client, {})
    assert store.rewinds == []


def test_positions_outside_the_log_are_left_out_of_the_undecodable_search(
    store: FakeStore, client: FakeClient, positions: PartitionPositions
) -> None:
    _placed(store, client, positions, {0: 20})  # partition 1: nothing stored, at its log start
    client.starts[1] = 4
    client.highwaters = {client.tp(0): 20, client.tp(1): 9}
    assert positions.held(client) == {client.tp(1): 4}

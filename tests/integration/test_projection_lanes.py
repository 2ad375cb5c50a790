"""`casetrack project`'s lanes (projections/lanes): notifications in a daemon thread of
its own beside the other views, on one store; a lane that fails stops the other."""

from __future__ import annotations

import threading
import time

import pytest

from adapters.postgres.event_store import CaseStore
from consumers.file_ingest import ingest_lines
from projections import lanes
from projections.projector import Projector
from projections.registry import select
from simulation import casegen
from tests.integration.test_ingest import _lines


def test_notifications_run_in_a_lane_of_their_own() -> None:
    found = lanes.lanes(select(None))
    assert [[p.name for p in lane] for lane in found] == [
        [p.name for p in select(None) if p.name != "notifications"],
        ["notifications"],
    ]
    assert [len(lane) for lane in lanes.lanes(select(["case_status"]))] == [1]


def test_both_lanes_catch_up_and_stop(store: CaseStore) -> None:
    projections = select(["case_status", "tracker_history", "notifications"])
    stop = threading.Event()
    runner = threading.Thread(
        target=lanes.run, args=(store, projections, stop), kwargs={"poll_interval": 0.2}
    )
    runner.start()
    try:
        ingest_lines(_lines(casegen.generate(20, seed=5)), "t", store)
        head = store.recorder.max_notification_id() or 0
        deadline = time.monotonic() + 30
        while min(Projector(store, p).position() for p in projections) < head:
            assert time.monotonic() < deadline, "a lane did not catch up"
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()


def test_a_lane_that_fails_stops_the_other_and_raises(store: CaseStore) -> None:
    def chores() -> None:
        raise RuntimeError("a bug in the chores")

    stop = threading.Event()
    with pytest.raises(RuntimeError, match="a bug in the chores"):
        lanes.run(store, select(["case_status", "notifications"]), stop, after_catch_up=chores)
    assert stop.is_set()

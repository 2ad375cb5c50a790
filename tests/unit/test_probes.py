"""The probe server (adapters.probes) on a loopback port: liveness follows the loop's
heartbeat (a clock moved by hand shows a stalled loop), readiness the checks too."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from adapters import probes
from adapters.kafka_broker import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


Served = tuple[int, Clock, probes.Heartbeat, dict[str, bool]]


@pytest.fixture
def served() -> Iterator[Served]:
    clock = Clock()
    heartbeat = probes.Heartbeat(clock)
    healthy = {"database": True}
    port = free_port()
    server = probes.serve(
        probes.Probes(heartbeat, [("database", lambda: healthy["database"])], live_seconds=60),
        port,
        "127.0.0.1",
    )
    yield port, clock, heartbeat, healthy
    server.shutdown()
    server.server_close()


def test_a_turning_loop_is_live_and_ready(served: Served) -> None:
    port, clock, _, _ = served
    clock.now += 59
    assert get(port, "/livez") == (200, {"status": "ok"})
    assert get(port, "/readyz") == (200, {"status": "ok"})
    assert get(port, "/other")[0] == 404


def test_a_loop_that_stops_turning_is_not_live(served: Served) -> None:
    port, clock, heartbeat, _ = served
    clock.now += 61  # nothing polled the stop event for longer than the bound
    assert get(port, "/livez") == (503, {"status": "stalled"})
    assert get(port, "/readyz") == (503, {"status": "unavailable", "failing": ["stalled"]})
    assert not heartbeat.is_set()  # the loop turns again: live again
    assert get(port, "/livez")[0] == 200


def test_waiting_on_the_stop_event_counts_as_turning(served: Served) -> None:
    port, clock, heartbeat, _ = served
    clock.now += 61
    assert heartbeat.wait(0.01) is False  # a retry's pause: entered and left
    assert get(port, "/livez")[0] == 200
    heartbeat.set()
    assert heartbeat.is_set() and heartbeat.wait(0)


def test_a_failing_check_is_not_ready_but_still_live(served: Served) -> None:
    port, _, _, healthy = served
    healthy["database"] = False
    assert get(port, "/readyz") == (503, {"status": "unavailable", "failing": ["database"]})
    assert get(port, "/livez")[0] == 200


def test_a_check_that_raises_fails_and_the_broker_check_needs_a_listener() -> None:
    def boom() -> bool:
        raise OSError("unreachable")

    stalled = probes.Probes(probes.Heartbeat(), [("broker", boom)])
    assert stalled.failing() == ["broker"]
    assert probes.broker(f"127.0.0.1:{free_port()}")() is False
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        assert probes.broker(f"127.0.0.1:{free_port()},127.0.0.1:{port}")() is True
    finally:
        listener.close()


def test_without_a_port_the_stop_event_is_plain() -> None:
    assert type(probes.stop_event(None, [])) is threading.Event

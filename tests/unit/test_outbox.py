"""adapters.http.outbox: jobs run off the caller's path, a full queue refuses at once,
a failing job does not stop the workers, and stopping lets queued work finish."""

from __future__ import annotations

import asyncio

from adapters.http.outbox import Outbox


def test_jobs_run_a_full_queue_refuses_and_stop_drains() -> None:
    async def scenario() -> list[str]:
        done: list[str] = []
        gate = asyncio.Event()
        outbox = Outbox(workers=1, capacity=2)
        assert not outbox.submit(lambda: gate.wait()), "not running yet"
        outbox.start()

        async def blocked() -> None:
            await gate.wait()
            done.append("blocked")

        async def failing() -> None:
            raise RuntimeError("boom")

        async def later() -> None:
            done.append("later")

        assert outbox.submit(blocked)
        await asyncio.sleep(0)  # the worker takes it: the queue is empty again
        assert outbox.submit(failing) and outbox.submit(later)
        assert not outbox.submit(later), "the queue holds two"
        gate.set()
        await outbox.stop(grace=5)
        return done

    assert asyncio.run(scenario()) == ["blocked", "later"]

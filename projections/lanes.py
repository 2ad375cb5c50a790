"""`casetrack project`'s daemon in lanes: the projections that announce what they apply
(notifications) in a thread of their own, beside the views the API reads.

One daemon steps its projections in turn, a page each, so a view the API reads was read
again only after every other projection had applied its page: the notifications page
(views folded, changes worked out for every role, outbox rows written) lengthened every
round, and so the time until the tracker showed a change. In its own lane, with its own
listener and page cache, it runs beside them; the lanes share the store (its connection
pool) and the stop event, and the first lane runs the daemon's chores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from projections import daemon
from projections.leases import LeaseBackend
from projections.ports import ProjectionStore
from projections.projector import Projection
from projections.rebuild import Announcing


def lanes(projections: Sequence[Projection]) -> list[list[Projection]]:
    """The projections that announce apart from the others (empty lanes left out)."""
    announcing = {p.name for p in projections if isinstance(p, Announcing)}
    found = [
        [p for p in projections if p.name not in announcing],
        [p for p in projections if p.name in announcing],
    ]
    return [lane for lane in found if lane]


def run(
    store: ProjectionStore,
    projections: Sequence[Projection],
    stop: threading.Event,
    *,
    poll_interval: float = 2.0,
    after_catch_up: Callable[[], None] | None = None,
    leases: Callable[[], LeaseBackend] | None = None,
) -> None:
    """``daemon.run`` for each lane, in threads, until ``stop``; a lane that fails stops
    the others, and its error is raised here. With ``leases``, each lane shares its
    projections with the same lane of other processes through a backend of its own
    (projections/leases: a lane is a group)."""
    found = lanes(projections)

    def backend() -> LeaseBackend | None:
        return leases() if leases is not None else None

    if len(found) == 1:
        daemon.run(
            store,
            found[0],
            stop,
            poll_interval=poll_interval,
            after_catch_up=after_catch_up,
            leases=backend(),
        )
        return
    failures: list[BaseException] = []

    def lane(group: list[Projection], chores: Callable[[], None] | None) -> None:
        try:
            daemon.run(
                store,
                group,
                stop,
                poll_interval=poll_interval,
                after_catch_up=chores,
                leases=backend(),
            )
        except BaseException as e:
            failures.append(e)
            stop.set()

    threads = [
        threading.Thread(
            target=lane,
            args=(group, after_catch_up if number == 0 else None),
            name=f"lane-{group[0].name}",
        )
        for number, group in enumerate(found)
    ]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]

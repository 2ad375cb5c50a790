"""casetrack with the hash chains of issue 11 off: events are stored without their
event_hashes rows (no leaf, link or COPY), as the release before the chains stored them.
The baseline of `bench_overhead.py --chains-off`, which measures what the chains cost on
this tree alone (a `--baseline-rev` before them also lacks everything added since).
Never a setting of casetrack itself: a log written so cannot be verified.

Run as a script, it is the `casetrack` command with the chains off.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from adapters.postgres.event_hashes import EventHashes

_NO_LEAF = (b"", b"")


def _no_leaves(
    self: EventHashes, stored: Sequence[Any], envelopes: Sequence[Any] | None = None
) -> Iterator[tuple[bytes, bytes]]:
    return itertools.repeat(_NO_LEAF, len(stored))


def _nothing(self: EventHashes, *args: Any) -> None:
    return None


def chains_off() -> None:
    """Every recorder of this process from now on hashes and chains nothing."""
    EventHashes.leaves_of = _no_leaves  # type: ignore[method-assign]
    EventHashes.append = _nothing  # type: ignore[method-assign, assignment]
    EventHashes.committed = _nothing  # type: ignore[method-assign]


if __name__ == "__main__":
    from adapters.cli.main import main

    chains_off()
    sys.exit(main())

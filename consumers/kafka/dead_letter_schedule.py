"""When the Kafka consumer sends stored dead letters on to the dead-letter topic.

Poison messages are dead letters in their batch's transaction; publishing them
comes after the commit (the table is an outbox, see dead_letter_publisher), so it
never holds a partition up. It is due at start (rows an earlier run left
unpublished) and after each batch that stored new dead letters; while the topic
is unavailable it is retried every DLQ_RETRY_SECONDS, between polls.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from kafka.errors import KafkaError

from consumers.kafka.dead_letter_publisher import DeadLetterPublisher
from consumers.kafka.stats import ConsumeStats

log = structlog.get_logger("casetrack.kafka")

DLQ_RETRY_SECONDS = 5.0


class DeadLetterSchedule:
    def __init__(self, stats: ConsumeStats, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stats = stats
        self._clock = clock
        self._publisher: DeadLetterPublisher | None = None
        self.due = True  # rows left unpublished by an earlier run
        self._retry_at = 0.0

    def publish_with(self, publisher: DeadLetterPublisher) -> None:
        """The publisher of the current connection (its producer's)."""
        self._publisher = publisher

    def stored(self) -> None:
        """A batch stored new dead letters."""
        self.due = True

    def publish_if_due(self) -> None:
        if self.due and self._clock() >= self._retry_at:
            self.publish()

    def publish(self) -> None:
        """Send every pending dead letter; a Kafka error is logged and retried later.

        The store's errors are raised.
        """
        assert self._publisher is not None
        try:
            self._publisher.publish_pending()
            self.due = False
        except KafkaError as e:
            self._retry_at = self._clock() + DLQ_RETRY_SECONDS
            log.warning(
                "dead-letter topic unavailable; will retry",
                error=type(e).__name__,
                retry_in=DLQ_RETRY_SECONDS,
            )
        finally:  # rows of a failed round that did go count too
            self.stats.dead_letters_published = self._publisher.published

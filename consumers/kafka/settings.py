"""Where the Kafka consumer reads and how: its settings and its clients' configurations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consumers.kafka.security import KafkaSecurity

CLOSE_TIMEOUT_MS = 5_000
BOOTSTRAP_TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class ConsumerSettings:
    """Where to read and how; the timeouts are kafka-python's, in milliseconds."""

    bootstrap_servers: str
    topic: str = "case-events"
    group: str = "casetrack"
    dlq_topic: str | None = None  # default: "<topic>.dlq"
    max_poll_records: int = 500
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 30_000
    fetch_max_wait_ms: int = 200
    poll_timeout_ms: int = 500
    backoff_initial: float = 0.5  # seconds, doubled per failed retry
    backoff_max: float = 30.0
    # TLS and SASL: every client below uses them (consumers.kafka.security)
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @property
    def dead_letter_topic(self) -> str:
        return self.dlq_topic or f"{self.topic}.dlq"

    def consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": self.group,
            "client_id": "casetrack-consumer",
            "enable_auto_commit": False,
            # Positions always come from PostgreSQL; an out-of-range fetch must
            # surface here instead of being silently reset by the client.
            "auto_offset_reset": "none",
            "max_poll_records": self.max_poll_records,
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "max_poll_interval_ms": self.max_poll_interval_ms,
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
            # Notice a topic created again (after a broker restart) within half a minute.
            "metadata_max_age_ms": 30_000,
            **self.security.client_config(),
        }

    def producer_config(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": "casetrack-dead-letters",
            # Not idempotent: a broker that restarts without its state (the embedded one
            # always does) forgets the producer id, and an idempotent producer then fails
            # every send until it is replaced. Idempotence buys nothing here: publishing is
            # at least once anyway, and readers drop repeats by dead_letter_id.
            "enable_idempotence": False,
            "acks": "all",
            "linger_ms": 5,
            "max_block_ms": 10_000,
            "request_timeout_ms": 10_000,
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
            **self.security.client_config(),
        }

    def status_config(self, timeout: float) -> dict[str, Any]:
        """The lag report's client: it reads the group's committed offsets, never joins it."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": self.group,
            "client_id": "casetrack-status",
            "enable_auto_commit": False,
            "fetch_max_wait_ms": 100,
            "request_timeout_ms": int(timeout * 1000) + 1000,
            "bootstrap_timeout_ms": int(timeout * 1000),
            **self.security.client_config(),
        }

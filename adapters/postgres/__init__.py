"""PostgreSQL: the event store, dead letters and the schema they live in."""

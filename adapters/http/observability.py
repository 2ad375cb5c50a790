"""Every request: an id, a latency and status for /metrics, one access-log line, security
headers on the answer, and a 500 problem (never a traceback) for anything unexpected.

A pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request).
Access lines hold the method, the route template, the status, the duration,
the request id and, when valid, the application number; never the raw path,
the query, the client address or any header, which may carry personal data.
The request id is always ours: a client's X-Request-ID would let it choose what our
logs and the audit log record.

Answers are never cached unless the route says how (the file reads' private,
revalidated views); tokens, accounts and problems get ``no-store``. HSTS goes out
only over TLS (directly or from a trusted proxy's X-Forwarded-Proto).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.metrics import Metrics
from adapters.http.problems import Problem
from domain import application_number as numbers

access = structlog.get_logger("casetrack.access")
_SECURITY = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
# Any other method (the client may send any token) is "other" in metrics and logs: one
# time series per made-up method would grow without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_NO_STORE = (b"cache-control", b"no-store")
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class Observability:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False
        answered: float | None = None  # background tasks run after this: not counted

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", ()))
                named = {name for name, _ in headers}
                # A route may set its own policy (the web pages' CSP allows their stylesheet):
                # two CSP headers would both apply, the stricter one blocking it.
                headers.extend(pair for pair in _SECURITY if pair[0] not in named)
                headers.append((b"x-request-id", request_id.encode()))
                if b"cache-control" not in named:
                    headers.append(_NO_STORE)
                if scope.get("scheme") == "https":
                    headers.append(_HSTS)
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                answered = time.perf_counter()
            await send(message)

        error: str | None = None
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as e:  # the last line of defence: answer 500, log the type only
            error = type(e).__name__
            if not response_started:
                status = 500
                response = Problem(500, "Something went wrong on our side; try again later.")
                await response.response()(scope, receive, send_wrapper)
        elapsed = (answered or time.perf_counter()) - started
        route = _route(scope)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        self.metrics.observe(route, method, status, elapsed)
        fields: dict[str, Any] = {
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
        }
        number = scope.get("path_params", {}).get("application_number")
        if numbers.is_valid(number):
            fields["application_number"] = number
        if error:
            fields["error"] = error
            access.error("request failed", **fields)
        else:
            access.info("request", **fields)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"

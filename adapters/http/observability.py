"""Every request: an id, a latency and status for /metrics, one access-log line, and a
500 problem (never a traceback) for anything unexpected.

A pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request).
Access lines hold the method, the route template, the status, the duration,
the request id and, when valid, the application number; never the raw path,
the query, the client address or any header, which may carry personal data.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.metrics import Metrics
from adapters.http.problems import Problem
from domain import application_number as numbers

access = structlog.get_logger("casetrack.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


class Observability:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False
        answered: float | None = None  # background tasks run after this: not counted

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
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
        self.metrics.observe(route, scope["method"], status, elapsed)
        fields: dict[str, Any] = {
            "request_id": request_id,
            "method": scope["method"],
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


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
    return secrets.token_hex(8)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"

"""Refuse oversized requests before reading them: a body over the limit is a 413 (at
once when Content-Length says so, as soon as the running total passes it when the
body is chunked); too many header fields, or too many header bytes, a 431.

The server bounds what it buffers before the headers are complete (uvicorn's h11
``h11_max_incomplete_event_size``, see adapters.cli.http_commands); headers that
arrive complete in one read are bounded here.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.problems import Problem

_TOO_LARGE = "The request body is larger than {limit} bytes."
_CLOSE = {"Connection": "close"}  # the unread rest of the body must not be parsed as a request


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a chunked body passes the limit; FastAPI re-raises
    HTTPExceptions from body parsing, so the problem handler answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _TOO_LARGE.format(limit=limit), headers=_CLOSE)


class RequestLimits:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, max_headers: int, max_header_bytes: int
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if (
            len(headers) > self.max_headers
            or sum(len(name) + len(value) for name, value in headers) > self.max_header_bytes
        ):
            detail = f"At most {self.max_headers} header fields, {self.max_header_bytes} bytes."
            await _answer(Problem(431, detail, headers=_CLOSE), scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in headers:
            # h11 has refused malformed lengths already; a huge one would overflow int()
            if name == b"content-length" and (
                not value.isdigit() or len(value) > 18 or int(value) > limit
            ):
                problem = Problem(413, _TOO_LARGE.format(limit=limit), headers=_CLOSE)
                await _answer(problem, scope, receive, send)
                return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
            return message

        await self.app(scope, bounded_receive, send)


async def _answer(problem: Problem, scope: Scope, receive: Receive, send: Send) -> None:
    await problem.response(Request(scope))(scope, receive, send)

"""The pollers' fast lane: well-formed GETs of a file's view or history, answered
without FastAPI's routing and parameter machinery.

On this machine FastAPI spends more time routing and resolving parameters
than the read itself takes, and pollers are most of the traffic. This ASGI
middleware answers only requests it fully understands (a valid application
number, no query other than lang=en|fr, a well-formed session token); it
builds the answer with adapters.http.views, as the routes do, and names the
route for metrics and access logs. Everything else goes on to FastAPI, which
answers the edge cases (422, 401 and 403 problems) and documents the routes.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.http import views
from adapters.http.auth import token_hash_of_header
from adapters.http.problems import Problem
from domain import application_number as numbers
from domain.catalogue import LANGUAGES

_PATH = re.compile(r"/v1/applications/([^/]*)(/history)?")  # and a valid number
_LANGS = {b"": None} | {f"lang={lang}".encode(): lang for lang in LANGUAGES}


class FastReads:
    def __init__(self, app: ASGIApp, routes: list[Any]) -> None:
        """``routes``: the read routes this lane stands in for (they name the metrics)."""
        self.app = app
        by_path = {getattr(route, "path", ""): route for route in routes}
        self._routes = {
            False: by_path["/v1/applications/{application_number}"],
            True: by_path["/v1/applications/{application_number}/history"],
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(scope["path"])
        query = scope.get("query_string", b"")
        if match is None or not numbers.is_valid(match.group(1)) or query not in _LANGS:
            await self.app(scope, receive, send)
            return
        authorization = if_none_match = if_modified_since = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"if-modified-since":
                if_modified_since = value.decode("latin-1")
        token = token_hash_of_header(authorization)
        if token is None:
            await self.app(scope, receive, send)
            return
        number, is_history = match.group(1), match.group(2) is not None
        scope["route"] = self._routes[is_history]
        scope["path_params"] = {"application_number": number}
        services = scope["app"].state.services
        conditions = views.Conditions(if_none_match, if_modified_since)
        try:
            answer = await views.answer(
                services, token, number, _LANGS[query], conditions, history=is_history
            )
        except Problem as problem:
            await problem.response(Request(scope))(scope, receive, send)
            return
        headers = answer.headers
        if answer.status == 200:
            headers = [*headers, (b"content-length", str(len(answer.body)).encode())]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

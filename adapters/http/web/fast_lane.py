"""The application page's fast lane: GET /{lang}/applications/{number} (no query) goes
straight to its route function, without FastAPI's routing, as adapters.http.fast_lane
does for the API's reads. The answer is the route's own; only the way there is shorter.
Anything else (another path, a query, another method) goes on to FastAPI.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.http.web import routes

_PATH = re.compile(r"/(en|fr)/applications/([A-Z][0-9]{9})")
PAGE = "/{lang}/applications/{number}"  # registered under each language


class FastPages:
    def __init__(self, app: ASGIApp, routes: list[Any]) -> None:
        """``routes``: the web routes; the application page's names the metrics."""
        self.app = app
        by_path = {getattr(route, "path", ""): route for route in routes}
        self._routes = {lang: by_path[PAGE.replace("{lang}", lang)] for lang in ("en", "fr")}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            match = _PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self._routes[match.group(1)]
        scope["path_params"] = {"number": match.group(2)}
        response = await routes.application(Request(scope), match.group(2))
        await response(scope, receive, send)

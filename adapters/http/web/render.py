"""Rendering a page: the Jinja2 templates (autoescaped), the page's headers and cookies.

Every page goes out with a strict Content-Security-Policy (its own stylesheet and
images, nothing else: no script at all, no inline style, forms post only here, no
framing) and ``no-store``: pages show personal status and hold a CSRF token.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.web import cookies, texts
from adapters.http.web.page import STAGES
from projections.tracker_view import EstimateOf

HERE = Path(__file__).parent
STATIC = HERE / "static"

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
    " base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": CSP,
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
    auto_reload=False,
)


_env.globals.update(
    t=texts.t,
    long_date=texts.long_date,
    number=texts.number,
    CSRF_FIELD=cookies.CSRF_FIELD,
    STAGES=STAGES,
)


# The application page, rendered once per state of its file (adapters.http.web.routes:
# the key holds the texts the page is made from), with a slot for each browser's CSRF
# token. Kept per app (app.state), so two apps in one process never share a page.
_SLOT = "\ue000csrf\ue000"  # private-use characters: in no text, untouched by escaping
_MAX_RENDERED = 4096


@dataclass(frozen=True)
class Rendered:
    parts: list[bytes]  # the page around its CSRF token's slots
    estimate_of: EstimateOf | None  # what its estimate was of, and that estimate's
    fingerprint: str  # fingerprint then (views.Shown): the page is stale when it moves


def _rendered(request: Request) -> dict[Hashable, Rendered]:
    state = request.app.state
    found: dict[Hashable, Rendered] | None = getattr(state, "rendered_pages", None)
    if found is None:
        found = state.rendered_pages = {}
    return found


def cached(request: Request, key: Hashable) -> Rendered | None:
    return _rendered(request).get(key)


def keep(request: Request, key: Hashable, rendered: Rendered) -> None:
    pages = _rendered(request)
    if len(pages) >= _MAX_RENDERED:
        pages.clear()
    pages[key] = rendered


def html(request: Request, template: str, lang: str, **context: Any) -> list[bytes]:
    """The page ``template`` in ``lang``, in parts around its CSRF token's slots."""
    path = request.url.path
    other = texts.OTHER[lang]
    notice = request.query_params.get("notice", "")  # the one query a page keeps
    query = f"notice={notice}" if notice.replace("_", "").isalpha() else ""
    found = _env.get_template(template).render(
        lang=lang,
        other_lang=other,
        other_url=f"/{other}{path[3:]}" + (f"?{query}" if query else ""),
        csrf_token=_SLOT,
        **context,
    )
    return [part.encode() for part in found.split(_SLOT)]


def answer(request: Request, parts: list[bytes], secret_key: bytes, status: int = 200) -> Response:
    """The page's answer: its parts joined by a CSRF token for its forms (and the cookie
    it is checked against, when the browser has none yet)."""
    secret = cookies.csrf_secret(request)
    new_secret = secret is None
    if secret is None:
        secret = cookies.new_csrf_secret()
    body = cookies.csrf_token(secret_key, secret).encode().join(parts)
    response = Response(body, status, PAGE_HEADERS, "text/html; charset=utf-8")
    if new_secret:
        cookies.set_csrf(response, request, secret)
    return response


def page(
    request: Request,
    template: str,
    lang: str,
    secret_key: bytes,
    status: int = 200,
    **context: Any,
) -> Response:
    """The page ``template`` in ``lang``, rendered now."""
    return answer(request, html(request, template, lang, **context), secret_key, status)

"""Rendering a page: the Jinja2 templates (autoescaped), the page's headers and cookies.

Every page goes out with a strict Content-Security-Policy (its own stylesheet and
images, nothing else: no script at all, no inline style, forms post only here, no
framing) and ``no-store``: pages show personal status and hold a CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.web import cookies, texts
from adapters.http.web.page import STAGES

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


# Rendered pages by their view's validator (views.Shown.tag: file, role, language, last
# update, day and estimate), with a slot for each browser's CSRF token: a file's page is
# rendered once per change, as the API answers 304 until then.
# Kept per app (app.state), so two apps in one process never share a page.
_SLOT = "\ue000csrf\ue000"  # private-use characters: in no text, untouched by escaping
_MAX_RENDERED = 4096


def _rendered(request: Request) -> dict[str, list[bytes]]:
    state = request.app.state
    found: dict[str, list[bytes]] | None = getattr(state, "rendered_pages", None)
    if found is None:
        found = state.rendered_pages = {}
    return found


def page(
    request: Request,
    template: str,
    lang: str,
    secret_key: bytes,
    status: int = 200,
    *,
    key: str | None = None,
    build: Callable[[], dict[str, Any]] | None = None,
    **context: Any,
) -> Response:
    """The page ``template`` in ``lang``, with a CSRF token for its forms (and the cookie
    it is checked against, when the browser has none yet). With a ``key``, the page is
    rendered once for that key (``build`` gives the rest of its context, on a miss)."""
    secret = cookies.csrf_secret(request)
    new_secret = secret is None
    if secret is None:
        secret = cookies.new_csrf_secret()
    rendered = _rendered(request)
    parts = rendered.get(key) if key is not None else None
    if parts is None:
        path = request.url.path
        other = texts.OTHER[lang]
        notice = request.query_params.get("notice", "")  # the one query a page keeps
        query = f"notice={notice}" if notice.replace("_", "").isalpha() else ""
        html = _env.get_template(template).render(
            lang=lang,
            other_lang=other,
            other_url=f"/{other}{path[3:]}" + (f"?{query}" if query else ""),
            csrf_token=_SLOT,
            **context,
            **(build() if build is not None else {}),
        )
        parts = [part.encode() for part in html.split(_SLOT)]
        if key is not None:
            if len(rendered) >= _MAX_RENDERED:
                rendered.clear()
            rendered[key] = parts
    body = cookies.csrf_token(secret_key, secret).encode().join(parts)
    response = Response(body, status, PAGE_HEADERS, "text/html; charset=utf-8")
    if new_secret:
        cookies.set_csrf(response, request, secret)
    return response

"""Rendering a page: the Jinja2 templates (autoescaped), the page's headers and cookies.

Every page goes out with a strict Content-Security-Policy (its own stylesheet and
images, nothing else: no script at all, no inline style, forms post only here, no
framing) and ``no-store``: pages show personal status and hold a CSRF token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.web import cookies, texts
from domain.personal_data import ERASED

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


def personal(value: object, lang: str) -> str:
    """A value that may be an erased person's: "[erased]" (in the page's language)."""
    if value is None:
        return ""
    return texts.t("app.erased", lang) if value == ERASED else str(value)


_env.globals.update(
    t=texts.t,
    long_date=texts.long_date,
    number=texts.number,
    personal=personal,
    CSRF_FIELD=cookies.CSRF_FIELD,
)


def page(
    request: Request,
    template: str,
    lang: str,
    secret_key: bytes,
    status: int = 200,
    **context: Any,
) -> Response:
    """The page ``template`` in ``lang``, with a CSRF token for its forms (and the cookie
    it is checked against, when the browser has none yet)."""
    secret = cookies.csrf_secret(request)
    new_secret = secret is None
    if secret is None:
        secret = cookies.new_csrf_secret()
    path = request.url.path
    other = texts.OTHER[lang]
    query = request.url.query
    html = _env.get_template(template).render(
        lang=lang,
        other_lang=other,
        other_url=f"/{other}{path[3:]}" + (f"?{query}" if query else ""),
        csrf_token=cookies.csrf_token(secret_key, secret),
        **context,
    )
    response = Response(html, status_code=status, media_type="text/html; charset=utf-8")
    response.headers.update(PAGE_HEADERS)
    if new_secret:
        cookies.set_csrf(response, request, secret)
    return response

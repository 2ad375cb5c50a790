"""The web pages' two cookies: the session and the CSRF secret.

The session cookie holds the same session token the API hands out (POST /v1/sessions),
checked by the same server-side sessions: signing out or resetting the password ends
it for the page as for the API. Both cookies are HttpOnly, SameSite=Strict (never sent
on a request started by another site), Secure when the page is served over TLS (the
request's scheme, set from a trusted proxy's X-Forwarded-Proto where there is one), and
then named with the ``__Host-`` prefix: a browser takes such a cookie only from this host
over TLS, so a sibling subdomain or a plain-http answer cannot plant one (a planted CSRF
cookie, whose form token anyone can fetch, would let another site sign a browser in).

CSRF: a double-submit token bound to the server's secret. The ``ct_csrf`` cookie holds
a random value; every form carries HMAC(secret_key, value), which another site can
neither read nor compute. A post whose form token does not match its cookie is refused.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from domain.accounts import SESSION_PREFIX, is_token, token_digest

SESSION = "ct_session"
CSRF = "ct_csrf"
CSRF_FIELD = "csrf_token"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _name(request: Request, cookie: str) -> str:
    return f"__Host-{cookie}" if _secure(request) else cookie


def session_hash(request: Request) -> bytes | None:
    """The stored hash of the request's session cookie, when it holds a well-formed token."""
    token = request.cookies.get(_name(request, SESSION), "")
    if not is_token(token) or not token.startswith(SESSION_PREFIX):
        return None
    return token_digest(token)


def set_session(response: Response, request: Request, token: str, ttl: timedelta) -> None:
    response.set_cookie(
        _name(request, SESSION), token, max_age=int(ttl.total_seconds()), path="/",
        secure=_secure(request), httponly=True, samesite="strict",
    )  # fmt: skip


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        _name(request, SESSION), path="/", secure=_secure(request), httponly=True, samesite="strict"
    )


def csrf_secret(request: Request) -> str | None:
    value = request.cookies.get(_name(request, CSRF), "")
    return value if 20 <= len(value) <= 64 and value.isascii() else None


def new_csrf_secret() -> str:
    return secrets.token_urlsafe(32)


def set_csrf(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        _name(request, CSRF), value, path="/", secure=_secure(request), httponly=True,
        samesite="strict",
    )  # fmt: skip


@functools.lru_cache(maxsize=8192)
def csrf_token(secret_key: bytes, value: str) -> str:
    """What the forms carry for the cookie ``value``. Remembered for the browsers seen
    lately: a browser keeps its cookie, and an HMAC costs more than the rest of a cached
    page's answer (OpenSSL 3 sets up the MAC anew on every call)."""
    mac = hmac.digest(secret_key, f"csrf|{value}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_ok(request: Request, secret_key: bytes, given: str | None) -> bool:
    value = csrf_secret(request)
    if value is None or not given:
        return False
    return hmac.compare_digest(csrf_token(secret_key, value).encode(), given.encode())

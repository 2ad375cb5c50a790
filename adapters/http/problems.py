"""RFC 9457 problem details for every error the API returns.

Handlers turn our ``Problem`` exceptions, request validation errors, routing
errors into ``application/problem+json`` (anything unexpected becomes a 500 problem in
adapters.http.observability, which never lets an exception reach the server). Bodies
never echo input values (they may carry personal data) and never carry a
stack trace.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

MEDIA_TYPE = "application/problem+json"
_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    431: ("headers-too-large", "Request header fields too large"),
    422: ("invalid-request", "The request is not valid"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


class FieldError(BaseModel):
    location: list[str | int] = Field(description='Where the problem is, e.g. ["body", "uci"]')
    message: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="A URI reference naming the kind of problem (/problems/...)")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):
    """An error answer: raise it from a route."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        default_slug, default_title = _TITLES.get(status, ("error", "Error"))
        super().__init__(detail or title or default_title)
        self.status = status
        self.slug = slug or default_slug
        self.title = title or default_title
        self.detail = detail
        self.headers = headers or {}
        self.errors = errors

    def response(self, request: Request | None = None) -> Response:
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if request is not None:
            request_id = request.scope.get("state", {}).get("request_id")
            if request_id:
                body["instance"] = f"urn:casetrack:request:{request_id}"
        if self.errors is not None:
            body["errors"] = self.errors
        return Response(
            orjson.dumps(body), status_code=self.status, media_type=MEDIA_TYPE, headers=self.headers
        )


def not_found() -> Problem:
    """One answer for 'no such file' and 'not your file': nothing to tell them apart."""
    return Problem(404, "No application with that number is linked to your account.")


def unauthenticated() -> Problem:
    return Problem(
        401,
        "Send a valid session token: Authorization: Bearer <token>.",
        headers={"WWW-Authenticate": 'Bearer realm="casetrack"'},
    )


def rate_limited(retry_after: int) -> Problem:
    return Problem(
        429,
        f"Too many requests; try again in {retry_after} seconds.",
        headers={"Retry-After": str(retry_after)},
    )


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a route may answer."""
    return {
        status: {
            "description": _TITLES.get(status, ("", "Error"))[1],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for status in statuses
    }


def add_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """Put ProblemDetails (referenced by ``responses``) into the document's components."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    found = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(found.pop("$defs", {}))
    schemas["ProblemDetails"] = found
    return document


# pydantic error types whose message is built from the schema only (limits, patterns,
# expected values), never from the input; any other type gets a fixed message.
_SCHEMA_ONLY_MESSAGES = frozenset(
    {
        "missing", "string_type", "string_too_short", "string_too_long",
        "string_pattern_mismatch", "literal_error", "int_type", "int_parsing",
        "int_from_float", "greater_than", "greater_than_equal", "less_than",
        "less_than_equal", "bool_type", "bool_parsing", "date_type", "date_parsing",
        "date_from_datetime_parsing", "date_from_datetime_inexact", "datetime_type",
        "datetime_parsing", "datetime_from_date_parsing", "timezone_aware", "model_type",
        "model_attributes_type", "dict_type", "list_type", "float_type", "float_parsing",
        "union_tag_not_found",
    }
)  # fmt: skip
_FIXED_MESSAGES = {
    "json_invalid": "the body is not valid JSON",
    "extra_forbidden": "has a field this endpoint does not take (its name is not repeated)",
}


def field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, from pydantic's errors, never the offending input: not in the
    message (an email's reason, a discriminator's tag quote it) nor in the location (an
    unknown field's name is input too)."""
    found = []
    for item in error.errors()[:20]:
        kind = str(item.get("type", ""))
        location = [part if isinstance(part, int) else str(part) for part in item.get("loc", ())]
        ctx = item.get("ctx") or {}
        if kind == "extra_forbidden":
            location = location[:-1]
        if kind.startswith("union_tag_"):
            location.append(str(ctx.get("discriminator", "")).strip("'"))
        if kind in _SCHEMA_ONLY_MESSAGES:
            message = str(item.get("msg", ""))
        elif kind == "union_tag_invalid":
            message = f"should be one of {ctx.get('expected_tags', 'the documented values')}"
        else:
            message = _FIXED_MESSAGES.get(kind, "not a valid value")
        found.append({"location": location, "message": message[:200]})
    return found


def install(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return exc.response(request)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return Problem(
            422, "Some fields are missing or invalid.", errors=field_errors(exc)
        ).response(request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None
        if exc.status_code == 404:
            detail = "No such resource."
        return Problem(exc.status_code, detail, headers=headers).response(request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)

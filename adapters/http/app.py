"""The tracker API's FastAPI application: routes, problem handlers, observability.

``create_app`` connects nothing until the server starts: its lifespan has the
services built then (by adapters.bootstrap), so the OpenAPI document can be
produced without a database.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from adapters import bootstrap
from adapters.http import (
    accounts_api,
    audit_api,
    ops_api,
    problems,
    reads_api,
    sessions_api,
    webhooks_api,
)
from adapters.http.fast_lane import FastReads
from adapters.http.metrics import Metrics
from adapters.http.observability import Observability
from adapters.http.request_limits import RequestLimits
from adapters.http.services import Services
from adapters.http.settings import ApiSettings
from adapters.http.web import routes as web_routes
from adapters.http.web.fast_lane import FastPages
from adapters.privacy.vault import Vault
from adapters.settings import Settings

DESCRIPTION = """\
The online application status tracker's API: accounts with emailed codes, role-based
status views of family-class applications, auditor access to the event log, and
operations endpoints. Errors are RFC 9457 problem details. See docs/api.md.
"""


ServicesFactory = Callable[[ApiSettings, Metrics], Services]


def create_app(api: ApiSettings, build_services: ServicesFactory) -> FastAPI:
    """The app; ``build_services`` (adapters.bootstrap.services) runs at each start-up,
    in the server's event loop."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(api, metrics)
        await services.open()
        app.state.services = services
        gc.collect()
        gc.freeze()  # start-up objects never die: keep them out of every later collection
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="casetrack tracker API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # its redirect's Location is built from the Host header
        # FastAPI's OpenTelemetry hooks: casetrack has its own metrics and access log,
        # and asking whether a provider is set up costs every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    problems.install(app)
    for router in (
        accounts_api.router,
        sessions_api.router,
        reads_api.router,
        audit_api.router,
        ops_api.router,
        webhooks_api.router,
        web_routes.router,  # last: its /{lang}/... paths never shadow the API's
    ):
        app.include_router(router)
    app.add_middleware(FastReads, routes=reads_api.router.routes)
    app.add_middleware(FastPages, routes=web_routes.router.routes)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=api.max_body_bytes,
        max_headers=api.max_headers,
        max_header_bytes=api.max_header_bytes,
    )
    app.add_middleware(Observability, metrics=metrics)
    if api.trusted_proxies:  # outermost: address and scheme settled before anything reads them
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(api.trusted_proxies))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.add_schemas(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override hook
    return app


def openapi_document(app: FastAPI | None = None) -> dict[str, Any]:
    """The OpenAPI document as committed in docs/openapi.json."""
    if app is None:
        app = create_app(
            ApiSettings(
                database_url="postgresql://",
                schema="casetrack",
                mailer=_NoMail(),
                vault=Vault(Path("/nonexistent/kek.key"), b""),
            ),
            _no_services,
        )
    return app.openapi()


class _NoMail:
    def send(self, to: str, subject: str, body: str) -> None:
        raise RuntimeError("this app only describes itself")


def _no_services(settings: ApiSettings, metrics: Metrics) -> Services:
    raise RuntimeError("this app only describes itself")


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory --no-proxy-headers --http h11 adapters.http.app:app_from_env``
    (several worker processes), as ``casetrack serve`` runs it: the app reads proxy headers
    itself (CASETRACK_TRUSTED_PROXIES), and h11 bounds unfinished request heads."""
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    return bootstrap.api_app(settings)

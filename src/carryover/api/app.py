"""The HTTP application: one FastAPI app over the shared Carryover object.

`create_app(carry)` builds it around an app object (tests pass their own);
`app_from_environment` is the factory `carryover serve` gives uvicorn, so each
worker process reads the settings itself. The lifespan runs the webhook delivery
worker (carryover.api.worker) unless `webhook_worker` is off. Each resource is its own router
(carryover.api.rest); docs/api.md describes the API.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from carryover.api import es2plus, ops, portal, problems, worker
from carryover.api.nchf import routes as nchf
from carryover.api.nchf.fast_path import NchfFastPath
from carryover.api.portal.render import HERE as PORTAL_HERE
from carryover.api.portal.session import PortalRefusal, refused
from carryover.api.printable import PrintableRequest
from carryover.api.rest import (
    accounts,
    advice,
    esim,
    ledger,
    lines,
    plans,
    usage,
    webhooks,
)
from carryover.runtime import Carryover


def create_app(carry: Carryover, smdp_factory: Callable[[], Any] | None = None) -> FastAPI:
    """The app over `carry` (the composition root: every shared part comes from it);
    `smdp_factory`, when given, makes the ES2+ clients instead of the settings."""
    app = FastAPI(title="carryover", summary="Exact balances for eSIM mobile plans.",
                  version="1", lifespan=worker.lifespan, docs_url=None)
    if smdp_factory is not None:
        carry.smdp_factory = smdp_factory
    app.state.carry = carry
    settings = carry.settings
    problems.install(app)
    # Inside Observe (added later, so outside it): the hot path is counted and timed too.
    app.add_middleware(NchfFastPath)
    app.add_middleware(PrintableRequest)
    app.add_middleware(ops.Observe, metrics=carry.metrics)
    app.add_middleware(ops.BodyLimit, limit=settings.api_max_body_bytes)
    for module in (plans, accounts, lines, usage, ledger, advice, esim, webhooks):
        app.include_router(module.router)
    app.include_router(ops.router)
    app.include_router(es2plus.router)
    app.include_router(nchf.router)
    app.include_router(portal.router)
    app.mount("/portal/static", StaticFiles(directory=str(PORTAL_STATIC)), name="portal-static")
    app.add_exception_handler(PortalRefusal, refused)  # type: ignore[arg-type]
    _document_errors(app)
    _local_docs(app)
    return app


PORTAL_STATIC = PORTAL_HERE / "static"
DOCS_ASSETS = "/docs/assets"


def _local_docs(app: FastAPI) -> None:
    """/docs, the interactive API docs, from the fastapi-offline package: no CDN.

    FastAPI's default /docs loads Swagger UI's script and style from a CDN, so
    on a machine without internet access (a lab, a private network) it is blank.
    The fastapi-offline package ships a Swagger UI 5 build, which renders the
    OpenAPI 3.1 document FastAPI writes (Swagger UI 4 cannot), and it is served
    from here."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import HTMLResponse, PlainTextResponse
    from fastapi.staticfiles import StaticFiles

    try:
        assets = importlib.resources.files("fastapi_offline") / "static"
    except ModuleNotFoundError:  # an install that skipped a dependency: the API still serves
        @app.get("/docs", include_in_schema=False)
        def no_docs() -> PlainTextResponse:
            return PlainTextResponse("the interactive docs need the fastapi-offline package "
                                     "(pip install fastapi-offline); /openapi.json is "
                                     "the API's description", status_code=503)
        return

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="carryover API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def _document_errors(app: FastAPI) -> None:
    """The generated OpenAPI, with the body errors every operation can answer."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.document_errors(generate())
        return app.openapi_schema
    app.openapi = openapi  # type: ignore[method-assign]


def app_from_environment() -> FastAPI:
    carry = Carryover()
    app = create_app(carry)
    carry.tune_for_serving()
    return app

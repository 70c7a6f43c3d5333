"""The risk service: `create_app` wires the store, the live pipeline, authentication and the routers.

Routers: ``/auth`` (identity: the development identity provider, SAML, who-am-I), ``/api/v1`` live risk
(hierarchy, nodes, series, distribution, contributors, alerts) and store (reports, jobs, stress, back-tests,
historical series), ``/ws/live`` (snapshots and alerts, filtered per user), ``/grid`` (the Perspective pivot
grid), ``/healthz`` ``/readyz`` ``/metrics``, and the dashboard's static files at ``/``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ._config import ApiConfig
from ._context import ApiContext
from ._errors import install_error_handlers
from ._metrics import ApiMetrics
from ._ratelimit import RateLimiter

__all__ = ["STATIC_DIR", "build_context", "create_app"]

log = logging.getLogger("riskstream.api")

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"


class _Observe:
    """Counts and times HTTP requests by method, route template and status (a plain ASGI middleware: no
    per-request task or body streaming in between, unlike Starlette's ``BaseHTTPMiddleware``)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope.get("method", "")
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_seconds.labels(method, template).observe(time.perf_counter() - started)


def build_context(config: ApiConfig) -> ApiContext:
    """Open the store, load the portfolio, set up authentication and (not yet started) the live service."""
    from ..query._session import session
    from ..refdata import load_portfolio
    from ..store import RiskStore
    from ._auth import AuthConfig, Authenticator
    from ._live import LiveService

    store = RiskStore.open(config.store)
    loaded = load_portfolio(config.portfolio)
    metrics = ApiMetrics()
    # the development IdP's and sessions' signing keys live with the store, so tokens survive a restart
    auth_config = config.auth if config.auth is not None else AuthConfig(key_dir=Path(config.store) / "auth")
    auth = Authenticator(auth_config, store.catalog, public_url=config.public_url)
    # a login that changes a user's groups takes effect on the next report, not after the query layer's cache
    auth.on_provision.append(lambda user: session(store).forget_principals())
    live = LiveService(config, loaded, metrics) if config.live else None
    return ApiContext(
        config=config,
        store=store,
        loaded=loaded,
        live=live,
        auth=auth,
        metrics=metrics,
        limiter=RateLimiter(config.rate_limit_per_minute),
    )


def create_app(config: ApiConfig | None = None, *, ctx: ApiContext | None = None) -> FastAPI:
    """The FastAPI application; the live pipeline starts with the app and stops with it."""
    config = config or (ctx.config if ctx is not None else ApiConfig())
    context = ctx or build_context(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if context.live is not None:
            await context.live.start()
        try:
            yield
        finally:
            if context.live is not None:
                await context.live.stop()
            closer = context.extras.get("close")
            for close in closer or ():
                close()

    app = FastAPI(
        title="riskstream",
        version=__version__,
        description="Real-time market risk: live VaR/ES per node, reports over the risk store, risk jobs, "
        "stress tests and back-tests, with the store's entitlements on every endpoint and socket.",
        lifespan=lifespan,
    )
    app.state.ctx = context
    install_error_handlers(app)
    metrics = context.metrics

    app.add_middleware(_Observe, metrics=metrics)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness: store reachable and the live pipeline publishing.")
    def readyz() -> JSONResponse:
        checks: dict[str, Any] = {}
        try:
            context.store.catalog.users()
            checks["store"] = "ok"
        except Exception as exc:  # a probe reports, it does not raise
            checks["store"] = f"error: {exc}"
        if context.live is not None:
            checks["live"] = context.live.readiness()
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (text exposition format).")
    def prometheus() -> PlainTextResponse:
        from ..bus import METRICS_REGISTRY

        if context.live is not None:
            context.live.update_gauges()
        body = generate_latest(metrics.registry) + generate_latest(METRICS_REGISTRY)
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)

    from ._auth import router as auth_router
    from ._grid import router as grid_router
    from ._routes_live import router as live_router
    from ._routes_store import router as store_router

    app.include_router(auth_router)
    app.include_router(live_router)
    app.include_router(store_router)
    app.include_router(grid_router)
    if STATIC_DIR.is_dir():
        app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="dashboard")
    return app

"""The FastAPI application: routers under /api/v1, one error shape, loops in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dljobs import __version__
from dljobs.controller.api import (
    bundles,
    endpoints,
    errors,
    health,
    identity,
    jobs,
    models,
    openapi,
    operations,
    reports,
    webhooks,
)
from dljobs.controller.runtime import Runtime, build_runtime
from dljobs.controller.settings import Settings
from dljobs.controller.telemetry import ControllerMetrics, RequestTelemetry, configure_logging
from dljobs.controller.ui import mount_dashboard
from dljobs.spec.api import API_PREFIX


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None, migrate: bool = True
) -> FastAPI:
    """The app. Without settings (an API worker process, started by uvicorn as a factory) it reads them
    from the environment and sets up logging itself."""
    if settings is None:
        settings = Settings()
        configure_logging(settings.server.log_level, settings.server.log_format)
    metrics = runtime.metrics if runtime is not None else ControllerMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = runtime or build_runtime(settings, metrics)
        app.state.runtime = active
        await active.start(migrate=migrate)
        try:
            yield
        finally:
            await active.stop()

    app = FastAPI(
        title="dljobs",
        version=__version__,
        description="Distributed deep-learning training jobs: submit, queue, run on Ray, follow.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        # FastAPI's own OpenTelemetry wrapping costs a millisecond a request; dljobs keeps its own metrics
        telemetry={"tracing": False, "metrics": False},
    )
    errors.install(app)
    openapi.install(app)
    # each router carries its full path (/api/v1/...), which is what request metrics are labelled with
    for module in (health, jobs, reports, identity, bundles, webhooks, operations, models, endpoints):
        app.include_router(module.router)
    app.include_router(endpoints.predict_router)
    mount_dashboard(app)
    app.add_middleware(RequestTelemetry, metrics=metrics)
    app.add_middleware(
        errors.RequestIdAndSizeLimit,
        limit=settings.server.max_body_bytes,
        large_limit=settings.storage.max_bundle_bytes,
        large_prefix=bundles.BUNDLES_PREFIX,
    )
    return app

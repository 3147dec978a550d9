"""Liveness and readiness: the only endpoints that answer without a token (they reveal nothing)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from dljobs import __version__
from dljobs.controller.api.context import runtime_of
from dljobs.controller.db.migrate import head_revision
from dljobs.spec import api
from dljobs.spec.api import API_PREFIX

router = APIRouter(prefix=API_PREFIX, tags=["health"])


@router.get("/health", response_model=api.Health)
async def health() -> api.Health:
    return api.Health(status="ok", version=__version__)


@router.get("/ready", response_model=api.Readiness, responses={503: {"model": api.Readiness}})
async def ready(request: Request) -> JSONResponse:
    """Ready when the database answers with the schema this controller needs (a fresh install waits for its
    migration job); Ray's state is reported but does not make the API unready."""
    runtime = runtime_of(request)
    checks: dict[str, str] = {}
    try:
        async with runtime.sessions() as session:
            version = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        head = head_revision()
        checks["database"] = "ok" if version == head else f"schema at {version}, waiting for migration {head}"
    except Exception as exc:
        checks["database"] = f"unreachable or not migrated: {type(exc).__name__}"
    capacity = await runtime.scheduler.capacity.get()
    checks["ray"] = "ok" if capacity.ready else (runtime.ray_error or "unreachable")
    ok = checks["database"] == "ok"
    body = api.Readiness(status="ready" if ok else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

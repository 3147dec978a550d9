"""/api/v1/endpoints: deploy models, roll versions out, read what endpoints measured, and predict.

Managing endpoints takes a user token. `POST /endpoints/{name}/predict` takes the endpoint's own API key
(or a user token of its project), checked before the body is read.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from dljobs.controller.api.context import authenticated, runtime_of, transaction
from dljobs.controller.errors import ApiError, invalid
from dljobs.controller.services import endpoints as service
from dljobs.controller.services import jobs as job_service
from dljobs.controller.services.gateway import Route
from dljobs.controller.services.monitoring import endpoint_stats
from dljobs.spec.api import API_PREFIX
from dljobs.spec.serving import (
    CreatedEndpointKey,
    CreateKeyRequest,
    DeployedEndpoint,
    DeployRequest,
    Endpoint,
    EndpointKey,
    EndpointStats,
    Prediction,
)

PREFIX = f"{API_PREFIX}/endpoints"
router = APIRouter(prefix=PREFIX, tags=["endpoints"], dependencies=[Depends(authenticated)])
predict_router = APIRouter(prefix=PREFIX, tags=["predict"])


@router.post("", response_model=DeployedEndpoint, status_code=201)
async def deploy(request: Request, response: Response, body: DeployRequest) -> DeployedEndpoint:
    """Deploy a registered model version (or a job's model) as endpoint `name`, or roll it out on it."""
    runtime = runtime_of(request)
    async with transaction(request) as (session, principal):
        job = None
        if body.job is not None:
            job = (await job_service.resolve_job_ref(session, principal, body.job)).job
        endpoint, key = await service.deploy_request(
            session,
            runtime.store,
            principal,
            name=body.name,
            model=body.model,
            job=job,
            project=body.project,
            canary=body.canary,
            changes=body.config,
        )
        row = await service.get_endpoint(session, principal, endpoint.name)
        result = DeployedEndpoint(**(await service.endpoint_to_api(session, row)).model_dump(), key=key)
    if key is None:
        response.status_code = 200
    runtime.gateway.forget(body.name)
    runtime.deployer.wake()
    return result


@router.get("", response_model=list[Endpoint])
async def list_endpoints(
    request: Request, project: Annotated[str | None, Query(max_length=63)] = None
) -> list[Endpoint]:
    async with transaction(request) as (session, principal):
        rows = await service.list_endpoints(session, principal, project)
        return [await service.endpoint_to_api(session, row) for row in rows]


@router.get("/{name}", response_model=Endpoint)
async def show(request: Request, name: str) -> Endpoint:
    async with transaction(request) as (session, principal):
        row = await service.get_endpoint(session, principal, name)
        return await service.endpoint_to_api(session, row, with_events=True)


@router.get("/{name}/stats", response_model=EndpointStats)
async def stats(
    request: Request, name: str, window: Annotated[int, Query(ge=10, le=7 * 86400)] = 300
) -> EndpointStats:
    """Requests, errors, latency percentiles, predictions and input drift (PSI) per version."""
    from dljobs.controller.services.gateway import flush_stats

    await flush_stats(runtime_of(request).gateway)  # this controller's latest figures count too
    async with transaction(request) as (session, principal):
        row = await service.get_endpoint(session, principal, name)
        versions = await endpoint_stats(session, row.endpoint.id, window)
        return EndpointStats(endpoint=name, window_s=window, versions=versions)


@router.post("/{name}/promote", response_model=Endpoint)
async def promote(request: Request, name: str) -> Endpoint:
    """The canary takes all traffic; the previous version drains."""
    runtime = runtime_of(request)
    async with transaction(request) as (session, principal):
        row = await service.get_endpoint(session, principal, name)
        await service.promote_canary(session, principal, row.endpoint, runtime.settings.serving.drain_seconds)
        result = await service.endpoint_to_api(session, row, with_events=True)
    runtime.gateway.forget(name)
    runtime.deployer.wake()
    return result


@router.post("/{name}/rollback", response_model=Endpoint)
async def rollback(request: Request, name: str) -> Endpoint:
    runtime = runtime_of(request)
    async with transaction(request) as (session, principal):
        row = await service.get_endpoint(session, principal, name)
        principal.require_user()
        if row.endpoint.canary_version_id is None:
            raise invalid("canary", f"endpoint '{name}' has no canary to roll back", code="invalid_request")
        await service.roll_back(
            session, row.endpoint, f"rolled back by {principal.name}", runtime.settings.serving.drain_seconds
        )
        result = await service.endpoint_to_api(session, row, with_events=True)
    runtime.gateway.forget(name)
    runtime.deployer.wake()
    return result


@router.delete("/{name}", status_code=202, response_model=Endpoint)
async def delete(request: Request, name: str) -> Endpoint:
    runtime = runtime_of(request)
    async with transaction(request) as (session, principal):
        row = await service.get_endpoint(session, principal, name)
        await service.delete_endpoint(session, principal, row.endpoint)
        result = await service.endpoint_to_api(session, row)
    runtime.gateway.forget(name)
    runtime.deployer.wake()
    return result


@router.post("/{name}/keys", response_model=CreatedEndpointKey, status_code=201)
async def create_key(request: Request, name: str, body: CreateKeyRequest) -> CreatedEndpointKey:
    async with transaction(request) as (session, principal):
        principal.require_user()
        row = await service.get_endpoint(session, principal, name)
        return await service.create_key(session, row.endpoint, body.name)


@router.get("/{name}/keys", response_model=list[EndpointKey])
async def list_keys(request: Request, name: str) -> list[EndpointKey]:
    async with transaction(request) as (session, principal):
        row = await service.get_endpoint(session, principal, name)
        return [service.key_to_api(k) for k in await service.list_keys(session, row.endpoint)]


@router.delete("/{name}/keys/{key_id}", response_model=EndpointKey)
async def revoke_key(request: Request, name: str, key_id: int) -> EndpointKey:
    runtime = runtime_of(request)
    async with transaction(request) as (session, principal):
        principal.require_user()
        row = await service.get_endpoint(session, principal, name)
        result = service.key_to_api(await service.revoke_key(session, row.endpoint, key_id))
    runtime.gateway.revoke_cached_keys()
    return result


async def _caller(request: Request, name: str) -> Route:
    """Predict's dependency: the endpoint's routing and the caller's key, before the body is read."""
    return await runtime_of(request).gateway.authorize(name, request.headers.get("authorization"))


@predict_router.post(
    "/{name}/predict",
    response_model=Prediction,
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def predict(request: Request, route: Annotated[Route, Depends(_caller)]) -> Response:
    """`{"inputs": [...]}` to `{"model", "version", "predictions": [...]}`; 422 names the bad input,
    429 and 503 come with Retry-After."""
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):
        raise invalid("", "the body is not valid JSON", code="invalid_input") from None
    runtime = runtime_of(request)
    started = time.perf_counter()
    try:
        answer = await runtime.gateway.predict(route, body)
    except ApiError as exc:
        runtime.metrics.endpoint_requests.labels(route.name, str(exc.status)).inc()
        raise
    runtime.metrics.endpoint_requests.labels(route.name, "200").inc()
    runtime.metrics.endpoint_latency.labels(route.name).observe(time.perf_counter() - started)
    return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")

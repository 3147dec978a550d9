"""/api/v1/jobs: submit, list, get, cancel, events, logs, why."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from dljobs.controller.api.context import authenticated, runtime_of, transaction
from dljobs.controller.errors import ApiError, invalid
from dljobs.controller.services import jobs as job_service
from dljobs.controller.services.converters import event_to_api, job_summary_to_api, job_to_api
from dljobs.controller.services.explain import explain
from dljobs.controller.services.logs import follow_logs, read_logs
from dljobs.spec import api
from dljobs.spec.api import API_PREFIX
from dljobs.spec.errors import FieldError, SpecError
from dljobs.spec.loading import load_spec_text, validate_spec
from dljobs.spec.status import JobStatus

router = APIRouter(prefix=f"{API_PREFIX}/jobs", tags=["jobs"], dependencies=[Depends(authenticated)])
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": api.CreateJobRequest.model_json_schema()},
            "application/yaml": {"schema": {"type": "string", "description": "the job spec as YAML"}},
        },
    }
}


async def _spec_from_body(request: Request) -> Any:
    body = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type in YAML_TYPES:
        return load_spec_text(body)
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the spec as application/json or application/yaml")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise SpecError([FieldError("", "the body is not valid JSON")], code="invalid_request") from None
    if not isinstance(document, dict) or set(document) != {"spec"}:
        raise SpecError([FieldError("", 'expected a JSON object {"spec": {...}}')], code="invalid_request")
    return validate_spec(document["spec"])


@router.post(
    "",
    status_code=201,
    response_model=api.Job,
    openapi_extra=_CREATE_BODY,
    responses={
        200: {"model": api.Job, "description": "the job an earlier request with this Idempotency-Key created"}
    },
)
async def create_job(
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
    dry_run: bool = False,
) -> api.Job:
    """Submit a job. It is validated, stored with its resolved spec and queued; nothing waits on Ray."""
    spec = await _spec_from_body(request)
    runtime = runtime_of(request)
    # the job and its first event are one statement on PostgreSQL; a dry run's insert is rolled back
    async with transaction(request, one_write=not dry_run) as (session, principal):
        row, created = await job_service.create_job(
            session, principal, spec, idempotency_key, runtime.project_ids, runtime.scheduler.capacity.last
        )
        result = job_to_api(row.job, row.project, row.user)
        if dry_run:
            await session.rollback()
            response.status_code = 200
            return result
    if created:
        runtime.scheduler.wake()
    else:
        response.status_code = 200
    return result


@router.get("", response_model=api.JobList)
async def list_jobs(
    request: Request,
    status: Annotated[list[JobStatus] | None, Query(description="repeat or comma-separate")] = None,
    project: Annotated[str | None, Query(max_length=63)] = None,
    name: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=job_service.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> api.JobList:
    async with transaction(request) as (session, principal):
        rows, next_cursor = await job_service.list_jobs(
            session, principal, statuses=status or (), project=project, name=name, limit=limit, cursor=cursor
        )
        items = [job_summary_to_api(r.job, r.project, r.user) for r in rows]
        return api.JobList(items=items, next_cursor=next_cursor)


@router.get("/{job}", response_model=api.Job)
async def get_job(request: Request, job: str) -> api.Job:
    """A job by id, or the newest job of that name."""
    async with transaction(request) as (session, principal):
        row = await job_service.resolve_job_ref(session, principal, job)
        return job_to_api(row.job, row.project, row.user)


@router.post("/{job}/cancel", response_model=api.Job)
async def cancel_job(request: Request, job: str) -> api.Job:
    async with transaction(request) as (session, principal):
        row = await job_service.resolve_job_ref(session, principal, job)
        wake = await job_service.cancel_job(session, principal, row)
        result = job_to_api(row.job, row.project, row.user)
    if wake:
        runtime_of(request).reconciler.wake()
    return result


@router.get("/{job}/events", response_model=list[api.JobEvent])
async def job_events(request: Request, job: str) -> list[api.JobEvent]:
    async with transaction(request) as (session, principal):
        row = await job_service.resolve_job_ref(session, principal, job)
        return [event_to_api(e) for e in await job_service.list_events(session, row.job.id)]


@router.get("/{job}/why", response_model=api.QueueExplanation)
async def why(request: Request, job: str) -> api.QueueExplanation:
    """Why a job waits: its place in the queue, and the quota or resource that holds it."""
    runtime = runtime_of(request)
    async with transaction(request) as (session, principal):
        row = await job_service.resolve_job_ref(session, principal, job)
        return await explain(session, row.job, runtime.scheduler.capacity, runtime.ray_error)


@router.get(
    "/{job}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "the job's output"}},
)
async def logs(
    request: Request,
    job: str,
    follow: bool = False,
    attempt: Annotated[int | None, Query(ge=1)] = None,
) -> StreamingResponse:
    """The output of an attempt (the latest by default); with `follow`, streamed until the job ends."""
    runtime = runtime_of(request)
    async with transaction(request) as (session, principal):
        principal.require_user()
        row = await job_service.resolve_job_ref(session, principal, job)
    if attempt is not None and attempt > max(row.job.attempt, 1):
        raise invalid(
            "attempt", f"job {row.job.id} has had {row.job.attempt} attempts", code="invalid_request"
        )
    if follow:
        stream: AsyncIterator[str] = follow_logs(runtime, row.job.id, attempt)
    else:
        text = await read_logs(runtime, row.job, attempt or row.job.attempt)
        stream = _once(text)
    return StreamingResponse(
        _encode(stream),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _once(text: str) -> AsyncIterator[str]:
    yield text


async def _encode(stream: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk.encode("utf-8", "replace")

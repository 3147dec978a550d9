"""/api/v1/jobs/{job}/metrics and /artifacts: what running jobs report, and what they leave behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from dljobs.controller.api.context import authenticated, runtime_of, transaction
from dljobs.controller.errors import invalid, not_found
from dljobs.controller.services import jobs as job_service
from dljobs.controller.services import reports, trials
from dljobs.controller.services.launching import job_prefix
from dljobs.spec import api
from dljobs.spec.api import API_PREFIX
from dljobs.storage import check_key
from dljobs.storage.base import KeyNotFound

JobId = Annotated[int, Path(ge=1, le=api.MAX_BIG_ID)]
router = APIRouter(prefix=f"{API_PREFIX}/jobs", tags=["reports"], dependencies=[Depends(authenticated)])


@router.post("/{job_id}/metrics", response_model=api.ReportedMetrics)
async def report_metrics(
    request: Request, job_id: JobId, body: api.ReportMetricsRequest
) -> api.ReportedMetrics:
    """Live metric points, sent by the job's rank 0 with its reporting token."""
    async with transaction(request) as (session, principal):
        row = await job_service.get_job(session, principal, job_id)
        return await reports.record_metrics(session, row.job.id, body.points, body.trial)


@router.get("/{job}/metrics", response_model=api.JobMetrics)
async def job_metrics(
    request: Request,
    job: str,
    name: Annotated[list[str] | None, Query(max_length=100)] = None,
    trial: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> api.JobMetrics:
    async with transaction(request) as (session, principal):
        row = await job_service.resolve_job_ref(session, principal, job)
        return await reports.metric_series(session, row.job.id, name, trial)


@router.post("/{job_id}/trials", response_model=api.ReportedTrials)
async def report_trials(request: Request, job_id: JobId, body: api.ReportTrialsRequest) -> api.ReportedTrials:
    """A sweep's trial rows, kept live by its driver with the job's reporting token."""
    async with transaction(request) as (session, principal):
        row = await job_service.get_job(session, principal, job_id)
        return api.ReportedTrials(accepted=await trials.record_trials(session, row.job, body.trials))


@router.get("/{job}/trials", response_model=api.TrialList)
async def list_trials(request: Request, job: str) -> api.TrialList:
    """A sweep's trials, best first by its metric, with its progress."""
    async with transaction(request) as (session, principal):
        row = await job_service.resolve_job_ref(session, principal, job)
        return await trials.list_trials(session, row.job)


@router.post("/{job_id}/artifacts", response_model=list[api.Artifact])
async def register_artifacts(
    request: Request, job_id: JobId, body: api.RegisterArtifactsRequest
) -> list[api.Artifact]:
    """Artifacts the job wrote under its artifacts URL (anything else is refused)."""
    runtime = runtime_of(request)
    async with transaction(request) as (session, principal):
        row = await job_service.get_job(session, principal, job_id)
        rows = await reports.register_artifacts(session, runtime.store, row.job.id, body.artifacts)
        return [reports.artifact_to_api(r) for r in rows]


@router.get("/{job}/artifacts", response_model=list[api.Artifact])
async def list_artifacts(request: Request, job: str) -> list[api.Artifact]:
    async with transaction(request) as (session, principal):
        row = await job_service.resolve_job_ref(session, principal, job)
        return [reports.artifact_to_api(r) for r in await reports.list_artifacts(session, row.job.id)]


@router.get(
    "/{job}/artifacts/{path:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_artifact(request: Request, job: str, path: str) -> StreamingResponse:
    """One file of the job's artifacts (or its archived logs), streamed from the store."""
    runtime = runtime_of(request)
    async with transaction(request) as (session, principal):
        principal.require_user()
        row = await job_service.resolve_job_ref(session, principal, job)
    try:
        key = check_key(f"{job_prefix(row.job.id)}/{check_key(path)}")
    except ValueError:
        raise invalid(
            "path", f"'{path}' is not a path inside the job's artifacts", code="invalid_request"
        ) from None
    try:
        size = await asyncio.to_thread(runtime.store.size, key)
    except KeyNotFound:
        raise not_found(f"artifact '{path}' of job {row.job.id}") from None
    chunks = await asyncio.to_thread(runtime.store.iter_chunks, key)
    filename = key.rsplit("/", 1)[-1].replace('"', "")
    return StreamingResponse(
        _in_thread(chunks),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _in_thread(chunks) -> AsyncIterator[bytes]:  # type: ignore[no-untyped-def]
    """Read a blocking iterator (boto3, files) without blocking the event loop."""
    iterator = iter(chunks)
    sentinel = object()
    while True:
        chunk = await asyncio.to_thread(next, iterator, sentinel)
        if chunk is sentinel:
            return
        yield chunk  # type: ignore[misc]

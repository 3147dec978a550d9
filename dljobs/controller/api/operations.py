"""`/metrics` for Prometheus (an admin token is required: the figures name every project)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from dljobs.controller.api.context import authenticated, runtime_of, transaction
from dljobs.controller.db.models import JobModel, ProjectModel
from dljobs.controller.services.converters import PRIORITY_NAME
from dljobs.spec.status import WAITING, JobStatus

router = APIRouter(tags=["operations"], dependencies=[Depends(authenticated)])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    runtime = runtime_of(request)
    gauges = runtime.metrics
    async with transaction(request) as (session, principal):
        principal.require_admin()
        by_status = dict(
            (await session.execute(select(JobModel.status, func.count()).group_by(JobModel.status))).all()
        )
        waiting = (
            await session.execute(
                select(JobModel.priority, ProjectModel.name, func.count())
                .join(ProjectModel, ProjectModel.id == JobModel.project_id)
                .where(JobModel.status.in_([s.value for s in WAITING]))
                .group_by(JobModel.priority, ProjectModel.name)
            )
        ).all()
    for status in JobStatus:
        gauges.jobs.labels(status.value).set(by_status.get(status.value, 0))
    gauges.queue_depth.clear()
    for priority, project, count in waiting:
        gauges.queue_depth.labels(PRIORITY_NAME.get(priority, str(priority)), project).set(count)
    return Response(generate_latest(gauges.registry), media_type=CONTENT_TYPE_LATEST)

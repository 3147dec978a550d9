"""`dljobs why`: the scheduler's own plan, read for one job."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.models import JobModel
from dljobs.controller.loops.scheduler import CapacityCache
from dljobs.controller.services.scheduling import load_queue_state, plan
from dljobs.spec import api
from dljobs.spec.status import WAITING, JobStatus

_NOT_WAITING = {
    JobStatus.STARTING: "starting on Ray",
    JobStatus.RUNNING: "running",
    JobStatus.CANCELLING: "being cancelled",
}


async def explain(
    session: AsyncSession, job: JobModel, capacity_cache: CapacityCache, ray_error: str | None
) -> api.QueueExplanation:
    status = JobStatus(job.status)
    if status not in WAITING:
        message = _NOT_WAITING.get(status) or f"finished ({status}): {job.status_reason or ''}".rstrip(": ")
        return api.QueueExplanation(job_id=job.id, status=status, blocker="not_waiting", message=message)
    state = await load_queue_state(session)
    capacity = await capacity_cache.get()
    decision = next((d for d in plan(state, capacity) if d.job_id == job.id), None)
    if decision is None:
        return api.QueueExplanation(
            job_id=job.id,
            status=status,
            blocker="ahead",
            message="behind more waiting jobs than the scheduler reads",
        )
    message = decision.message
    if decision.launch:
        message = "fits now: starts on the scheduler's next pass"
    elif decision.blocker == "cluster" and ray_error:
        message = ray_error
    return api.QueueExplanation(
        job_id=job.id,
        status=status,
        position=decision.position,
        ahead=list(decision.ahead),
        blocker=decision.blocker,
        message=message,
        needs=decision.needs,
        free=decision.free,
    )

"""The one place a job's status changes: the transition is checked, guarded and recorded as an event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import JobEventModel, JobModel
from dljobs.controller.services import webhooks
from dljobs.spec.status import TERMINAL, JobStatus, can_transition

MAX_REASON = 4000


class IllegalTransition(Exception):
    pass


async def change_status(
    session: AsyncSession,
    job: JobModel,
    new: JobStatus,
    reason: str,
    *,
    held_lease: str | None = None,
    **fields: Any,
) -> bool:
    """Move `job` to `new` if it is still in the status we read (and still under `held_lease`, if given).

    Returns False when another writer got there first (the row changed under us): the caller re-reads.
    Raises IllegalTransition for a move the state machine forbids. `fields` are written in the same update.
    """
    old = JobStatus(job.status)
    if not can_transition(old, new):
        raise IllegalTransition(f"job {job.id}: {old} -> {new} is not a legal transition")
    now = utcnow()
    values: dict[str, Any] = {
        "status": new.value,
        "status_reason": reason[:MAX_REASON],
        "updated_at": now,
        **fields,
    }
    if new in TERMINAL:
        values.setdefault("finished_at", now)
        values.setdefault("lease_owner", None)
        values.setdefault("lease_token", None)
        values.setdefault("lease_expires_at", None)
    statement = update(JobModel).where(JobModel.id == job.id, JobModel.status == old.value)
    if held_lease is not None:
        statement = statement.where(JobModel.lease_token == held_lease)
    result = await session.execute(statement.values(**values).execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add(
        JobEventModel(job_id=job.id, from_status=old.value, to_status=new.value, reason=reason[:MAX_REASON])
    )
    if new in TERMINAL:  # the webhook outbox, written in the same transaction as the change it reports
        await webhooks.job_finished(session, job, new, reason[:MAX_REASON])
        if job.kind == "sweep":  # cancelling (or losing) a sweep ends every trial still running
            from dljobs.controller.services.trials import end_live_trials

            await end_live_trials(session, job, new)
    await session.flush()
    for key, value in values.items():
        setattr(job, key, value)
    return True

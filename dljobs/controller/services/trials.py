"""A sweep's trials: rows the sweep's driver keeps live, listed best first by the sweep's metric."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.base import from_unix_time, utcnow
from dljobs.controller.db.models import JobModel, TrialModel
from dljobs.controller.errors import invalid
from dljobs.spec import api
from dljobs.spec.base import resolve_mode
from dljobs.spec.status import TERMINAL, JobStatus

LIVE = ("running", "retrying")


def _when(ts: float | None) -> datetime | None:
    return from_unix_time(ts)


def _sweep_of(job: JobModel) -> dict:  # type: ignore[type-arg]
    sweep = (job.spec or {}).get("sweep")
    if job.kind != "sweep" or not isinstance(sweep, dict):
        raise invalid("job", f"job {job.id} is not a sweep", code="not_a_sweep")
    return sweep


def _ended_status(status: JobStatus) -> str:
    """What a trial still live becomes when its sweep ends: stopped by a budget, else cancelled."""
    return "stopped" if status == JobStatus.SUCCEEDED else "cancelled"


async def record_trials(session: AsyncSession, job: JobModel, records: list[api.TrialRecord]) -> int:
    """Insert or update each trial by its number (the latest state wins). A sweep that has ended takes no
    live trial back: what its dying driver still sends as running is recorded as ended."""
    _sweep_of(job)
    ended = JobStatus(job.status) in TERMINAL
    numbers = [r.number for r in records]
    existing = {
        t.number: t
        for t in await session.scalars(
            select(TrialModel).where(TrialModel.job_id == job.id, TrialModel.number.in_(numbers))
        )
    }
    for record in records:
        row = existing.get(record.number)
        if row is None:
            row = TrialModel(job_id=job.id, number=record.number)
            session.add(row)
            existing[record.number] = row
        metric = record.metric if record.metric is not None and math.isfinite(record.metric) else None
        status = _ended_status(JobStatus(job.status)) if ended and record.status in LIVE else record.status
        row.status, row.params, row.metric = status, record.params, metric
        row.best_epoch, row.epochs, row.attempts = record.best_epoch, record.epochs, record.attempts
        row.checkpoint, row.error = record.checkpoint, record.error
        row.started_at = _when(record.started_at) or row.started_at
        row.finished_at = _when(record.finished_at) or row.finished_at
        row.updated_at = utcnow()
    await session.flush()
    return len(records)


async def list_trials(session: AsyncSession, job: JobModel) -> api.TrialList:
    sweep = _sweep_of(job)
    metric = str(sweep.get("metric"))
    mode = resolve_mode(metric, str(sweep.get("mode", "auto")))
    rows = list(await session.scalars(select(TrialModel).where(TrialModel.job_id == job.id)))
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda t: (t.metric is None, sign * (t.metric or 0.0), t.number))
    items = [trial_to_api(t) for t in rows]
    return api.TrialList(
        job_id=job.id, metric=metric, mode=mode, progress=progress(sweep, items), items=items
    )


def progress(sweep: dict, items: list[api.Trial]) -> api.SweepProgress:  # type: ignore[type-arg]
    grid = 1
    for distribution in (sweep.get("space") or {}).values():
        if isinstance(distribution, dict) and isinstance(distribution.get("grid"), list):
            grid *= len(distribution["grid"])
    total = sweep.get("trials") or (grid if sweep.get("algorithm") == "grid" else grid * math.ceil(10 / grid))
    best = next((t for t in items if t.metric is not None), None)
    return api.SweepProgress(
        trials=int(total),
        done=sum(t.status in api.TRIAL_ENDED for t in items),
        running=sum(t.status in LIVE for t in items),
        stopped_early=sum(t.status == "stopped" for t in items),
        failed=sum(t.status == "failed" for t in items),
        best=best.metric if best else None,
        best_trial=best.number if best else None,
    )


def trial_to_api(row: TrialModel) -> api.Trial:
    return api.Trial(
        number=row.number,
        status=row.status,  # type: ignore[arg-type]
        params=row.params,
        metric=row.metric,
        best_epoch=row.best_epoch,
        epochs=row.epochs,
        attempts=row.attempts,
        checkpoint=row.checkpoint,
        error=row.error,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


async def end_live_trials(session: AsyncSession, job: JobModel, status: JobStatus) -> None:
    """A sweep that ended: its trials still running end with it (cancelled, or failed with the sweep)."""
    final = _ended_status(status)
    await session.execute(
        update(TrialModel)
        .where(TrialModel.job_id == job.id, TrialModel.status.in_(LIVE))
        .values(status=final, finished_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )

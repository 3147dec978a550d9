"""The queue's one rule book, used both to launch jobs and to explain why a job waits (`dljobs why`).

Order: priority (high first), then submission order (FIFO). A job held by its project's quota does not hold
anybody else; a job that waits for cluster capacity holds every job behind it of its priority or lower
(no back-filling past it, so large jobs are not starved). A job larger than the whole cluster is reported
as such and holds nobody.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import JobModel, ProjectModel
from dljobs.controller.launchers.base import Capacity
from dljobs.spec.status import ACTIVE, WAITING

Blocker = Literal["none", "quota", "capacity", "ahead", "cluster", "backoff"]
EPS = 1e-9


@dataclass(frozen=True)
class Waiting:
    id: int
    project_id: int
    priority: int
    cpus: float
    gpus: float
    accelerator: str | None
    not_before: datetime | None = None


@dataclass
class Usage:
    jobs: int = 0
    cpus: float = 0.0
    gpus: float = 0.0


@dataclass(frozen=True)
class QuotaLimits:
    max_jobs: int | None = None
    max_cpus: float | None = None
    max_gpus: float | None = None


@dataclass(frozen=True)
class Decision:
    job_id: int
    launch: bool
    blocker: Blocker
    message: str
    position: int
    ahead: tuple[int, ...] = ()
    needs: dict[str, float] = field(default_factory=dict)
    free: dict[str, float] = field(default_factory=dict)


@dataclass
class QueueState:
    waiting: list[Waiting]
    project_usage: dict[int, Usage]
    cluster_usage: Usage
    accelerator_usage: dict[str, float]
    quotas: dict[int, QuotaLimits]
    project_names: dict[int, str]


def _fmt(x: float) -> str:
    return f"{x:g}"


def plan(state: QueueState, capacity: Capacity, now: datetime | None = None) -> list[Decision]:
    """A decision for every waiting job, in queue order."""
    now = now or utcnow()
    free_cpus = capacity.cpus - state.cluster_usage.cpus
    free_gpus = capacity.gpus - state.cluster_usage.gpus
    free_acc = {k: v - state.accelerator_usage.get(k, 0.0) for k, v in capacity.accelerators.items()}
    usage = defaultdict(Usage, {k: Usage(u.jobs, u.cpus, u.gpus) for k, u in state.project_usage.items()})
    holder: Waiting | None = None  # first job waiting for capacity: it holds those behind it
    decisions: list[Decision] = []
    queue_ids: list[int] = []
    for position, job in enumerate(state.waiting, start=1):
        needs = {"cpus": job.cpus, "gpus": job.gpus}
        free = {"cpus": max(free_cpus, 0.0), "gpus": max(free_gpus, 0.0)}
        ahead = tuple(queue_ids)
        queue_ids.append(job.id)

        def wait(
            blocker: Blocker,
            message: str,
            job: Waiting = job,
            free: dict[str, float] = free,
            needs: dict[str, float] = needs,
            ahead: tuple[int, ...] = ahead,
            position: int = position,
        ) -> None:
            decisions.append(Decision(job.id, False, blocker, message, position, ahead, needs, free))

        if not capacity.ready:
            wait("cluster", f"the Ray cluster is not reachable: {capacity.message or 'starting'}")
            continue
        if job.not_before is not None and job.not_before > now:
            wait(
                "backoff",
                f"retrying after an infrastructure failure; next attempt at {job.not_before:%H:%M:%S} UTC",
            )
            continue
        quota_message = _quota_message(
            job,
            usage[job.project_id],
            state.quotas.get(job.project_id),
            state.project_names.get(job.project_id, str(job.project_id)),
        )
        if quota_message:
            wait("quota", quota_message)
            continue
        too_big = _larger_than_cluster(job, capacity)
        if too_big:
            wait("cluster", too_big)
            continue
        if holder is not None:
            wait(
                "ahead",
                f"behind job {holder.id} (priority {holder.priority} >= {job.priority}), which waits "
                "for cluster capacity",
            )
            continue
        acc_free = free_acc.get(job.accelerator, 0.0) if job.accelerator else None
        fits = job.cpus <= free_cpus + EPS and job.gpus <= free_gpus + EPS
        if acc_free is not None and job.gpus > acc_free + EPS:
            fits = False
        if not fits:
            holder = job
            parts = [f"{_fmt(job.cpus)} CPUs ({_fmt(max(free_cpus, 0))} free of {_fmt(capacity.cpus)})"]
            if job.gpus:
                kind = f"{job.accelerator} " if job.accelerator else ""
                have = acc_free if acc_free is not None else free_gpus
                parts.append(f"{_fmt(job.gpus)} {kind}GPUs ({_fmt(max(have, 0))} free)")
            wait("capacity", "waiting for cluster capacity: needs " + " and ".join(parts))
            continue
        free_cpus -= job.cpus
        free_gpus -= job.gpus
        if job.accelerator:
            free_acc[job.accelerator] = free_acc.get(job.accelerator, 0.0) - job.gpus
        project = usage[job.project_id]
        project.jobs += 1
        project.cpus += job.cpus
        project.gpus += job.gpus
        decisions.append(Decision(job.id, True, "none", "starting", position, ahead, needs, free))
    return decisions


def _quota_message(job: Waiting, used: Usage, quota: QuotaLimits | None, project: str) -> str:
    if quota is None:
        return ""
    if quota.max_jobs is not None and used.jobs + 1 > quota.max_jobs:
        return f"project '{project}' quota: {used.jobs} of max_jobs {quota.max_jobs} running"
    if quota.max_cpus is not None and used.cpus + job.cpus > quota.max_cpus + EPS:
        return (
            f"project '{project}' quota: needs {_fmt(job.cpus)} CPUs, {_fmt(used.cpus)} of max_cpus "
            f"{_fmt(quota.max_cpus)} in use"
        )
    if quota.max_gpus is not None and used.gpus + job.gpus > quota.max_gpus + EPS:
        return (
            f"project '{project}' quota: needs {_fmt(job.gpus)} GPUs, {_fmt(used.gpus)} of max_gpus "
            f"{_fmt(quota.max_gpus)} in use"
        )
    return ""


def _larger_than_cluster(job: Waiting, capacity: Capacity) -> str:
    if job.cpus > capacity.cpus + EPS:
        return f"needs {_fmt(job.cpus)} CPUs but the cluster has {_fmt(capacity.cpus)} in all"
    if job.gpus > capacity.gpus + EPS:
        return f"needs {_fmt(job.gpus)} GPUs but the cluster has {_fmt(capacity.gpus)} in all"
    if job.accelerator and job.gpus > capacity.accelerators.get(job.accelerator, 0.0) + EPS:
        have = capacity.accelerators.get(job.accelerator, 0.0)
        known = ", ".join(sorted(capacity.accelerators)) or "none"
        return (
            f"needs {_fmt(job.gpus)} {job.accelerator} GPUs but the cluster has {_fmt(have)} (types: {known})"
        )
    return ""


async def load_queue_state(session: AsyncSession, limit: int = 5000) -> QueueState:
    """The waiting jobs in queue order, and what active jobs hold, per project and in all."""
    waiting_rows = await session.execute(
        select(
            JobModel.id,
            JobModel.project_id,
            JobModel.priority,
            JobModel.cpus,
            JobModel.gpus,
            JobModel.accelerator,
            JobModel.not_before,
        )
        .where(JobModel.status.in_([s.value for s in WAITING]))
        .order_by(JobModel.priority.desc(), JobModel.id)
        .limit(limit)
    )
    waiting = [Waiting(*row) for row in waiting_rows.all()]
    active = [s.value for s in ACTIVE]
    usage_rows = await session.execute(
        select(
            JobModel.project_id,
            func.count(),
            func.coalesce(func.sum(JobModel.cpus), 0.0),
            func.coalesce(func.sum(JobModel.gpus), 0.0),
        )
        .where(JobModel.status.in_(active))
        .group_by(JobModel.project_id)
    )
    project_usage = {pid: Usage(int(n), float(c), float(g)) for pid, n, c, g in usage_rows.all()}
    cluster = Usage(
        sum(u.jobs for u in project_usage.values()),
        sum(u.cpus for u in project_usage.values()),
        sum(u.gpus for u in project_usage.values()),
    )
    acc_rows = await session.execute(
        select(JobModel.accelerator, func.coalesce(func.sum(JobModel.gpus), 0.0))
        .where(JobModel.status.in_(active), JobModel.accelerator.is_not(None))
        .group_by(JobModel.accelerator)
    )
    accelerator_usage = {acc: float(g) for acc, g in acc_rows.all()}
    project_ids = {w.project_id for w in waiting}
    quotas: dict[int, QuotaLimits] = {}
    names: dict[int, str] = {}
    if project_ids:
        rows = await session.execute(
            select(
                ProjectModel.id,
                ProjectModel.name,
                ProjectModel.max_jobs,
                ProjectModel.max_cpus,
                ProjectModel.max_gpus,
            ).where(or_(*(ProjectModel.id == pid for pid in project_ids)))
        )
        for pid, name, max_jobs, max_cpus, max_gpus in rows.all():
            names[pid] = name
            quotas[pid] = QuotaLimits(max_jobs, max_cpus, max_gpus)
    return QueueState(waiting, project_usage, cluster, accelerator_usage, quotas, names)

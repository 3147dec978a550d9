"""Jobs: submit, read, list, cancel. The API records desired state; the loops do the work."""

from __future__ import annotations

import base64
import binascii
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, null, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import CodeBundleModel, JobEventModel, JobModel, ProjectModel, UserModel
from dljobs.controller.errors import ApiError, conflict, invalid, not_found
from dljobs.controller.launchers.base import Capacity
from dljobs.controller.services.auth import Principal, ProjectIds, project_by_name
from dljobs.controller.services.transitions import change_status
from dljobs.spec.api import MAX_BIG_ID
from dljobs.spec.base import is_name
from dljobs.spec.job import BUNDLE_PREFIX, PRIORITY_RANK, JobSpec
from dljobs.spec.status import TERMINAL, WAITING, JobStatus

MAX_PAGE = 500
MAX_REF = 63  # a job id or name in a path
_JOBS, _PROJECTS, _USERS = JobModel.__table__, ProjectModel.__table__, UserModel.__table__
_EVENTS = JobEventModel.__table__
# Core statements built once for the API's hottest paths (submit, list): no unit of work, no ORM rows.
# A repeated Idempotency-Key hits the unique constraint and inserts nothing; the first job is then read.
# What a submission sets (the other columns start empty):
_SUBMITTED = (
    "kind", "project_id", "name", "status", "status_reason", "priority", "spec", "submitted_by",
    "idempotency_key", "cpus", "gpus", "accelerator", "attempt", "max_retries", "timeout_s", "created_at",
    "updated_at",
)  # fmt: skip


def _insert_job(dialect: Any) -> Any:
    insert = dialect.insert(_JOBS).values(
        {name: bindparam(name, type_=_JOBS.c[name].type) for name in _SUBMITTED}
    )
    return insert.on_conflict_do_nothing(
        index_elements=["project_id", "submitted_by", "idempotency_key"]
    ).returning(_JOBS.c.id)


def _insert_job_and_event() -> Any:
    """PostgreSQL: the job and its first event in one statement (a data-modifying CTE): one round trip."""
    job = _insert_job(postgresql).cte("job")
    event = (
        _EVENTS.insert()
        .from_select(
            ["job_id", "from_status", "to_status", "reason", "created_at"],
            select(
                job.c.id,
                null(),
                bindparam("status", type_=_EVENTS.c.to_status.type),
                bindparam("event_reason", type_=_EVENTS.c.reason.type),
                bindparam("created_at", type_=_EVENTS.c.created_at.type),
            ),
        )
        .returning(_EVENTS.c.job_id)
        .cte("event")
    )
    return select(event.c.job_id)


_INSERT_JOB_AND_EVENT = _insert_job_and_event()
_INSERT_JOB = _insert_job(sqlite)
_INSERT_EVENT = _EVENTS.insert()
_LIST_JOBS = (
    select(
        *(column for column in _JOBS.c if column.name != "spec"),
        _PROJECTS.c.name.label("project_name"),
        _USERS.c.name.label("user_name"),
    )
    .join(_PROJECTS, _PROJECTS.c.id == _JOBS.c.project_id)
    .join(_USERS, _USERS.c.id == _JOBS.c.submitted_by)
)


@dataclass(frozen=True)
class JobRow:
    """A job (an ORM row to change, or a plain row in listings) with the names the API shows beside it."""

    job: JobModel
    project: str
    user: str


def resolve(spec: JobSpec) -> dict[str, object]:
    """The spec as stored: defaults filled in, and a seed chosen (and so recorded) when none was given."""
    if spec.training.seed is None:
        spec = spec.model_copy(
            update={"training": spec.training.model_copy(update={"seed": secrets.randbelow(2**31 - 1)})}
        )
    return spec.model_dump(mode="json")


def sweep_concurrency(spec: JobSpec, project: ProjectModel, capacity: Capacity | None) -> int:
    """How many trials of a sweep run at once: `max_concurrent`, else what the cluster holds (when its size
    is known); never more than the project's quota holds, nor more than the sweep's trials."""
    assert spec.sweep is not None
    cpus, gpus = spec.resources.total_cpus, spec.resources.total_gpus
    limit = spec.sweep.total_trials
    bounds = []
    if spec.sweep.max_concurrent is not None:
        bounds.append(spec.sweep.max_concurrent)
    elif capacity is not None:
        bounds.append(math.floor(capacity.cpus / cpus + 1e-9) if cpus > 0 else limit)
        if gpus > 0:
            bounds.append(math.floor(capacity.gpus / gpus + 1e-9))
    if project.max_cpus is not None and cpus > 0:
        bounds.append(math.floor(project.max_cpus / cpus + 1e-9))
    if project.max_gpus is not None and gpus > 0:
        bounds.append(math.floor(project.max_gpus / gpus + 1e-9))
    return max(1, min([limit, *bounds]))


async def create_job(
    session: AsyncSession,
    principal: Principal,
    spec: JobSpec,
    idempotency_key: str | None,
    projects: ProjectIds,
    capacity: Capacity | None = None,
) -> tuple[JobRow, bool]:
    """Insert a QUEUED job; returns (job, created). A repeated idempotency key returns the first job."""
    principal.require_user()
    project_id = await projects.get(session, spec.project)
    if project_id is None or not principal.sees_project(project_id):
        raise invalid("project", f"no project '{spec.project}' that you belong to")
    code = spec.workload.code
    if code is not None:
        if not code.startswith(BUNDLE_PREFIX):
            raise invalid(
                "workload.code",
                f"'{code}' is a local path the server cannot read: the dljobs CLI uploads it for you",
            )
        if await session.get(CodeBundleModel, code.removeprefix(BUNDLE_PREFIX)) is None:
            raise invalid("workload.code", f"no uploaded code bundle {code}")
    reference = spec.workload.init_from
    if reference and reference.startswith("job://"):
        source_id = int(reference.removeprefix("job://"))
        source = await session.get(JobModel, source_id)
        if source is None or source.project_id != project_id:
            raise invalid("workload.init_from", f"no job {source_id} in project '{spec.project}'")
    concurrency = 1
    if spec.sweep is not None:  # the sweep holds `concurrency` trials' resources while it runs
        project = await session.get(ProjectModel, project_id)  # its quotas as they are now
        assert project is not None
        concurrency = sweep_concurrency(spec, project, capacity)
        sweep = spec.sweep.model_copy(update={"max_concurrent": concurrency})
        spec = spec.model_copy(update={"sweep": sweep})
    now = utcnow()
    values = {
        "kind": spec.kind,
        "project_id": project_id,
        "name": spec.name,
        "status": JobStatus.QUEUED.value,
        "status_reason": "waiting in the queue",
        "priority": PRIORITY_RANK[spec.priority],
        "spec": resolve(spec),
        "submitted_by": principal.user_id,
        "idempotency_key": idempotency_key,
        "cpus": spec.resources.total_cpus * concurrency,
        "gpus": spec.resources.total_gpus * concurrency,
        "accelerator": spec.resources.accelerator,
        "attempt": 0,
        "max_retries": spec.retries,
        "timeout_s": spec.timeout,
        "created_at": now,
        "updated_at": now,
    }
    job_id = await _insert(session, values, f"submitted by {principal.name}")
    if job_id is None:  # this Idempotency-Key was used before: answer with that job
        existing = await find_by_idempotency_key(
            session, project_id, principal.user_id, idempotency_key or ""
        )
        assert existing is not None
        return existing, False
    return JobRow(JobModel(id=job_id, **values), spec.project, principal.name), True


async def _insert(session: AsyncSession, values: dict[str, Any], reason: str) -> int | None:
    """The job and its first event; the job's id, or None when its Idempotency-Key was used before."""
    if session.bind.dialect.name == "postgresql":
        return await session.scalar(_INSERT_JOB_AND_EVENT, {**values, "event_reason": reason})
    job_id = await session.scalar(_INSERT_JOB, values)
    if job_id is not None:
        event = {
            "job_id": job_id,
            "from_status": None,
            "to_status": values["status"],
            "reason": reason,
            "created_at": values["created_at"],
        }
        await session.execute(_INSERT_EVENT, event)
    return job_id  # type: ignore[no-any-return]


async def find_by_idempotency_key(
    session: AsyncSession, project_id: int, user_id: int, key: str
) -> JobRow | None:
    statement = _with_names(select(JobModel)).where(
        JobModel.project_id == project_id, JobModel.submitted_by == user_id, JobModel.idempotency_key == key
    )
    row = (await session.execute(statement)).first()
    return JobRow(*row) if row else None


def _with_names(statement: Select[tuple[JobModel]]) -> Select[tuple[JobModel, str, str]]:
    return (
        statement.add_columns(ProjectModel.name, UserModel.name)
        .join(ProjectModel, ProjectModel.id == JobModel.project_id)
        .join(UserModel, UserModel.id == JobModel.submitted_by)
    )


async def get_job(session: AsyncSession, principal: Principal, job_id: int) -> JobRow:
    """The job if the principal may see it; otherwise 404, exactly as if it did not exist."""
    row = (await session.execute(_with_names(select(JobModel)).where(JobModel.id == job_id))).first()
    if row is None or not principal.sees_project(row[0].project_id):
        raise not_found(f"job {job_id}")
    if principal.job_id is not None and principal.job_id != job_id:
        raise not_found(f"job {job_id}")
    return JobRow(*row)


async def resolve_job_ref(session: AsyncSession, principal: Principal, ref: str) -> JobRow:
    """A job by id, or by name (the newest job of that name the principal can see)."""
    if not ref or len(ref) > MAX_REF:
        raise invalid("job", "expected a job id or name", code="invalid_request")
    if ref.isascii() and ref.isdigit():  # str.isdigit alone takes '²', which int() refuses
        job_id = int(ref)
        if job_id > MAX_BIG_ID:  # no such id: answer as for any other missing job
            raise not_found(f"job {ref}")
        return await get_job(session, principal, job_id)
    if not is_name(ref):  # no job has that name: answer without a query
        raise not_found(f"job '{ref}'")
    statement = (
        _with_names(select(JobModel)).where(JobModel.name == ref).order_by(JobModel.id.desc()).limit(1)
    )
    if not principal.admin:
        statement = statement.where(JobModel.project_id.in_(principal.project_ids))
    row = (await session.execute(statement)).first()
    if row is None:
        raise not_found(f"job '{ref}'")
    return JobRow(*row)


def encode_cursor(job_id: int) -> str:
    return base64.urlsafe_b64encode(f"j{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("j") or not (text[1:].isascii() and text[1:].isdigit()):
            raise ValueError
        if int(text[1:]) > MAX_BIG_ID:
            raise ValueError
        return int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("cursor", "not a cursor this server issued", code="invalid_request") from None


async def list_jobs(
    session: AsyncSession,
    principal: Principal,
    *,
    statuses: Sequence[JobStatus] = (),
    project: str | None = None,
    name: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[JobRow], str | None]:
    """Newest first; `cursor` continues after the last job of the previous page."""
    principal.require_user()
    limit = max(1, min(limit, MAX_PAGE))
    statement = _LIST_JOBS.order_by(_JOBS.c.id.desc()).limit(limit + 1)
    if not principal.admin:
        statement = statement.where(_JOBS.c.project_id.in_(principal.project_ids))
    if project is not None:
        found = await project_by_name(session, project)
        if found is None or not principal.sees_project(found.id):
            return [], None
        statement = statement.where(_JOBS.c.project_id == found.id)
    if statuses:
        statement = statement.where(_JOBS.c.status.in_([s.value for s in statuses]))
    if name is not None:
        if not is_name(name):  # matched exactly, never as a pattern: no job has a name that is not one
            return [], None
        statement = statement.where(_JOBS.c.name == name)
    if cursor is not None:
        statement = statement.where(_JOBS.c.id < decode_cursor(cursor))
    rows = [JobRow(row, row.project_name, row.user_name) for row in (await session.execute(statement)).all()]
    next_cursor = encode_cursor(rows[limit - 1].job.id) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def list_events(session: AsyncSession, job_id: int) -> list[JobEventModel]:
    rows = await session.scalars(
        select(JobEventModel).where(JobEventModel.job_id == job_id).order_by(JobEventModel.id)
    )
    return list(rows)


async def cancel_job(session: AsyncSession, principal: Principal, row: JobRow) -> bool:
    """Record the wish to cancel. Waiting jobs end at once; launched ones go to CANCELLING for the reconciler.

    Returns True when the reconciler has work to do (wake it).
    """
    principal.require_user()
    job = row.job
    for _ in range(5):  # the loops may change the status under us: re-read and decide again
        status = JobStatus(job.status)
        if status in TERMINAL:
            raise conflict("already_finished", f"job {job.id} already finished ({status})")
        if status == JobStatus.CANCELLING:
            return True
        target = JobStatus.CANCELLED if status in WAITING else JobStatus.CANCELLING
        if await change_status(session, job, target, f"cancelled by {principal.name}", stop_reason="cancel"):
            return target == JobStatus.CANCELLING
        await session.refresh(job)
    raise ApiError(
        503, "busy", f"job {job.id} is changing too fast to cancel; try again", headers={"Retry-After": "1"}
    )

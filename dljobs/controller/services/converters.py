"""ORM rows to API bodies (`dljobs.spec.api`)."""

from __future__ import annotations

from typing import Any

from dljobs.controller.db.models import JobEventModel, JobModel, ProjectModel, TokenModel, UserModel
from dljobs.spec import api
from dljobs.spec.job import PRIORITY_RANK
from dljobs.spec.status import JobStatus

PRIORITY_NAME = {rank: name for name, rank in PRIORITY_RANK.items()}


def job_to_api(job: JobModel, project_name: str, user_name: str) -> api.Job:
    return api.Job(spec=job.spec, **_summary_fields(job, project_name, user_name))


def job_summary_to_api(job: JobModel, project_name: str, user_name: str) -> api.JobSummary:
    return api.JobSummary(**_summary_fields(job, project_name, user_name))


def _summary_fields(job: JobModel, project_name: str, user_name: str) -> dict[str, Any]:
    return dict(
        id=job.id,
        kind=job.kind or "job",
        name=job.name,
        project=project_name,
        status=JobStatus(job.status),
        status_reason=job.status_reason,
        priority=PRIORITY_NAME.get(job.priority, str(job.priority)),
        attempt=job.attempt,
        retries=job.max_retries,
        submitted_by=user_name,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        launch_id=job.launch_id,
    )


def event_to_api(event: JobEventModel) -> api.JobEvent:
    return api.JobEvent(
        id=event.id,
        job_id=event.job_id,
        created_at=event.created_at,
        from_status=JobStatus(event.from_status) if event.from_status else None,
        to_status=JobStatus(event.to_status),
        reason=event.reason,
    )


def project_to_api(project: ProjectModel) -> api.Project:
    return api.Project(
        name=project.name,
        quota={"max_jobs": project.max_jobs, "max_cpus": project.max_cpus, "max_gpus": project.max_gpus},
        created_at=project.created_at,
    )


def user_to_api(user: UserModel, projects: list[str]) -> api.User:
    return api.User(name=user.name, admin=user.is_admin, projects=projects, created_at=user.created_at)


def token_to_api(token: TokenModel, user_name: str) -> api.Token:
    return api.Token(
        id=token.id,
        user=user_name,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )

"""What a launch needs (the runner's environment, the code bundle) and what its outcome means for the job."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import ArtifactModel, JobModel
from dljobs.controller.launchers.base import LaunchError, LaunchRequest
from dljobs.controller.services.transitions import change_status
from dljobs.controller.settings import Settings
from dljobs.spec import runtime
from dljobs.spec.job import BUNDLE_PREFIX
from dljobs.spec.status import JobStatus
from dljobs.storage import ArtifactStore

ERROR_MARK = "dljobs-error: "
JOB_REF_PREFIX = "job://"
MODEL_ARTIFACT = "model.pt"
MAX_BACKOFF = 300.0


def bundle_key(sha256: str) -> str:
    return f"bundles/{sha256}.zip"


def job_prefix(job_id: int) -> str:
    return f"jobs/{job_id}"


def log_key(job_id: int, attempt: int) -> str:
    return f"{job_prefix(job_id)}/logs/attempt-{attempt}.log"


def api_url(settings: Settings) -> str:
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/")
    host = settings.server.host if settings.server.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{settings.server.port}"


async def resolve_init_from(session: AsyncSession, job: JobModel) -> str | None:
    """`workload.init_from: job://ID` as the storage URL of that job's weights (or the s3:// URL as given).

    A referenced job without a model fails the launch (not retried): its reason names the field.
    """
    reference = job.spec["workload"].get("init_from")
    if not reference or not reference.startswith(JOB_REF_PREFIX):
        return reference  # type: ignore[no-any-return]
    source_id = int(reference.removeprefix(JOB_REF_PREFIX))
    source = await session.get(JobModel, source_id)
    if source is None or source.project_id != job.project_id:
        raise LaunchError(f"workload.init_from: no job {source_id} in this project", infrastructure=False)
    model = await session.scalar(
        select(ArtifactModel).where(ArtifactModel.job_id == source_id, ArtifactModel.name == MODEL_ARTIFACT)
    )
    if model is None:
        raise LaunchError(
            f"workload.init_from: job {source_id} has no model ({source.status}): start from a finished job",
            infrastructure=False,
        )
    return model.uri


async def build_request(
    job: JobModel,
    settings: Settings,
    store: ArtifactStore,
    report_token: str,
    init_from_url: str | None = None,
) -> LaunchRequest:
    """The launch of the job's current attempt: runner env, code bundle, reserved driver CPUs."""
    spec = job.spec
    workload = spec["workload"]
    env = {
        runtime.ENV_JOB_ID: str(job.id),
        runtime.ENV_ATTEMPT: str(job.attempt),
        runtime.ENV_SPEC: json.dumps(spec, separators=(",", ":")),
        runtime.ENV_ARTIFACTS_URL: store.url_for(job_prefix(job.id)).rstrip("/"),
        runtime.ENV_API_URL: api_url(settings),
        runtime.ENV_JOB_TOKEN: report_token,
        "PYTHONUNBUFFERED": "1",
    }
    if settings.storage.s3_endpoint_url:
        env[runtime.ENV_S3_ENDPOINT_URL] = settings.storage.s3_endpoint_url
    if init_from_url:
        env[runtime.ENV_INIT_FROM_URL] = init_from_url
    bundle: bytes | None = None
    sha: str | None = None
    code = workload.get("code")
    if code and code.startswith(BUNDLE_PREFIX):
        sha = code.removeprefix(BUNDLE_PREFIX)
        bundle = await asyncio.to_thread(store.get_bytes, bundle_key(sha))
    resources = spec["resources"]
    metadata: dict[str, str] = {}
    if sha is not None and store.url.startswith("s3://"):
        metadata["code_uri"] = store.url_for(bundle_key(sha))  # nodes with S3 access fetch it directly
    if resources.get("memory_per_worker"):
        metadata["memory_per_worker"] = str(resources["memory_per_worker"])
    # a command runs in the driver itself, so the driver holds the job's CPUs; training runs in workers
    driver_cpus = float(resources["cpus_per_worker"]) if workload.get("command") else 0.0
    return LaunchRequest(
        launch_id=job.launch_id or "",
        job_id=job.id,
        attempt=job.attempt,
        entrypoint=runtime.RUNNER_ENTRYPOINT,
        env=env,
        code_bundle=bundle,
        code_sha256=sha,
        entrypoint_cpus=driver_cpus,
        metadata=metadata,
        workers=int(resources["workers"]),
        cpus_per_worker=float(resources["cpus_per_worker"]),
        gpus_per_worker=float(resources["gpus_per_worker"]),
        accelerator=resources.get("accelerator"),
    )


def backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(5.0 * 2 ** max(attempt - 1, 0), MAX_BACKOFF))


def failure_reason(message: str, logs: str) -> str:
    """The runner's own one-line reason when it gave one, else Ray's message and the last log lines."""
    marked = [line.split(ERROR_MARK, 1)[1].strip() for line in logs.splitlines() if ERROR_MARK in line]
    if marked:
        return marked[-1]
    tail = [line for line in logs.strip().splitlines() if line.strip()][-3:]
    parts = [message.strip()] if message.strip() else []
    if tail:
        parts.append("last log lines: " + " | ".join(line.strip()[:300] for line in tail))
    return "; ".join(parts) or "the job failed"


async def fail_or_retry(
    session: AsyncSession, job: JobModel, reason: str, *, infrastructure: bool, held_lease: str | None = None
) -> JobStatus | None:
    """After a failed attempt: RETRYING within the budget for infrastructure failures, else FAILED.

    A job being cancelled ends CANCELLED instead. Returns the new status, or None if the row moved on.
    """
    status = JobStatus(job.status)
    if status == JobStatus.CANCELLING:
        target = JobStatus.TIMED_OUT if job.stop_reason == "timeout" else JobStatus.CANCELLED
        why = f"{job.status_reason} ({reason})"
    elif infrastructure and job.attempt <= job.max_retries:
        target = JobStatus.RETRYING
        why = f"infrastructure failure, retry {job.attempt} of {job.max_retries}: {reason}"
    else:
        target = JobStatus.FAILED
        why = reason if not infrastructure else f"{reason} (no retries left after {job.attempt} attempts)"
    extra: dict[str, object] = {}
    if target == JobStatus.RETRYING:
        extra = {
            "not_before": utcnow() + backoff(job.attempt),
            "lease_owner": None,
            "lease_token": None,
            "lease_expires_at": None,
            "launched_at": None,
        }
    done = await change_status(session, job, target, why, held_lease=held_lease, **extra)
    return target if done else None

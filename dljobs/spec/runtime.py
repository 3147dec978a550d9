"""The contract between the controller and what it launches on Ray: environment variable names.

The controller's launcher sets these for the Ray job's driver (`python -m dljobs.workloads.runner`);
the runner and the training workers read them. Neither side imports the other.
"""

from __future__ import annotations

ENV_JOB_ID = "DLJOBS_JOB_ID"
ENV_ATTEMPT = "DLJOBS_ATTEMPT"
ENV_SPEC = "DLJOBS_SPEC"  # the resolved spec, as JSON
ENV_ARTIFACTS_URL = "DLJOBS_ARTIFACTS_URL"  # file:///... or s3://bucket/prefix/jobs/ID
ENV_S3_ENDPOINT_URL = "DLJOBS_S3_ENDPOINT_URL"
ENV_API_URL = "DLJOBS_API_URL"  # the controller, for live metrics and artifact registration
ENV_JOB_TOKEN = "DLJOBS_JOB_TOKEN"  # a token good for reporting on this one job only
ENV_INIT_FROM_URL = "DLJOBS_INIT_FROM_URL"  # workload.init_from resolved to a model's storage URL

RUNNER_ENTRYPOINT = "python -m dljobs.workloads.runner"


def launch_id(installation: str, job_id: int, attempt: int) -> str:
    """The Ray submission id of a job's attempt: deterministic, so a relaunch can never run twice; the
    installation id keeps two databases that share a Ray cluster from ever using the same one."""
    return f"dljobs-{installation}-{job_id}-{attempt}"


def attempt_launch_id(current: str, attempt: int) -> str:
    """The launch id of another attempt of the job whose current launch id is `current`."""
    return f"{current.rsplit('-', 1)[0]}-{attempt}"

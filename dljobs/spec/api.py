"""Request and response bodies of the HTTP API (`/api/v1`), shared by the controller and the SDK client.

Three families are kept apart: ORM models live in the controller (`JobModel`), requests are named
`...Request`, and what the API returns is named after the thing (`Job`, `JobEvent`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from dljobs.spec.base import Name
from dljobs.spec.status import JobStatus

API_PREFIX = "/api/v1"
# The largest ids the database holds: jobs (and what hangs off them) are 64-bit, users, tokens and webhooks
# 32-bit (PostgreSQL integer). A larger number in a path or body names nothing, rather than overflowing.
MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")  # tolerant: an older client reads a newer server


# ---- errors -------------------------------------------------------------------------------------------


class ErrorDetail(_Response):
    field: str
    message: str
    line: int | None = None


class ErrorBody(_Response):
    code: str = Field(description="stable, for programs: invalid_spec, not_found, unauthorized, ...")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
    request_id: str | None = None


class ErrorResponse(_Response):
    error: ErrorBody


# ---- jobs ---------------------------------------------------------------------------------------------


class CreateJobRequest(_Request):
    spec: dict[str, Any] = Field(description="the job spec as JSON; a raw YAML body is also accepted")


class JobSummary(_Response):
    """A job as listings show it: everything but its spec (`GET /jobs/{id}` has that)."""

    id: int
    kind: Literal["job", "sweep"] = "job"
    name: str
    project: str
    status: JobStatus
    status_reason: str | None = None
    priority: str
    attempt: int = Field(description="launches so far, counting retries")
    retries: int = Field(description="retries allowed after infrastructure failures")
    submitted_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    launch_id: str | None = Field(default=None, description="the Ray job's submission id")


class Job(JobSummary):
    spec: dict[str, Any] = Field(description="the resolved spec, defaults filled in")


class JobList(_Response):
    items: list[JobSummary]
    next_cursor: str | None = None


class JobEvent(_Response):
    id: int
    job_id: int
    created_at: datetime
    from_status: JobStatus | None
    to_status: JobStatus
    reason: str


class QueueExplanation(_Response):
    job_id: int
    status: JobStatus
    position: int | None = Field(default=None, description="1 = next to start; None when not waiting")
    ahead: list[int] = Field(default_factory=list, description="waiting jobs that start before this one")
    blocker: Literal["none", "quota", "capacity", "ahead", "cluster", "backoff", "not_waiting"]
    message: str
    needs: dict[str, float] = Field(default_factory=dict)
    free: dict[str, float] = Field(default_factory=dict)


# ---- identity, projects, tokens -----------------------------------------------------------------------


class Quota(_Request):
    max_jobs: int | None = Field(default=None, ge=0, le=1_000_000, description="concurrent jobs")
    max_cpus: float | None = Field(default=None, ge=0)
    max_gpus: float | None = Field(default=None, ge=0)


class CreateProjectRequest(_Request):
    name: Name
    quota: Quota = Field(default_factory=Quota)


class UpdateProjectRequest(_Request):
    quota: Quota


class Project(_Response):
    name: str
    quota: dict[str, float | int | None]
    created_at: datetime


class CreateUserRequest(_Request):
    name: Name
    admin: bool = False
    projects: list[Name] = Field(default_factory=list, max_length=1000)


class User(_Response):
    name: str
    admin: bool
    projects: list[str]
    created_at: datetime


class AddMemberRequest(_Request):
    user: Name


class CreateTokenRequest(_Request):
    user: Name | None = Field(default=None, description="admins may issue tokens for others")
    name: str = Field(default="cli", min_length=1, max_length=64, pattern=r"^[\w.@-]+$")
    expires_in_days: int | None = Field(default=90, ge=1, le=3650)


class Token(_Response):
    id: int
    user: str
    name: str
    prefix: str = Field(description="the first characters, to tell tokens apart")
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class CreatedToken(Token):
    token: str = Field(description="shown once; only its hash is stored")


class WhoAmI(_Response):
    user: str
    admin: bool
    projects: list[str]


# ---- health -------------------------------------------------------------------------------------------


class Health(_Response):
    status: Literal["ok"]
    version: str


class Readiness(_Response):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


# ---- live metrics and artifacts (reported by running jobs with their job token) ------------------------

METRIC_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_./-]{0,63}$"
MetricName = Annotated[str, StringConstraints(pattern=METRIC_NAME_PATTERN)]
ArtifactKind = Literal["model", "torchscript", "card", "metrics", "logs", "checkpoint", "other"]


class MetricPoint(_Request):
    name: MetricName
    step: int = Field(ge=0, le=2**62)
    epoch: int | None = Field(default=None, ge=0, le=MAX_ID)
    value: float  # NaN and infinities are dropped (and counted), not stored
    ts: float | None = Field(default=None, description="unix time of the report; default: arrival")


class ReportMetricsRequest(_Request):
    points: list[MetricPoint] = Field(max_length=10_000)
    trial: int | None = Field(default=None, ge=1, le=1_000_000, description="a sweep's trial, by number")


class ReportedMetrics(_Response):
    accepted: int
    dropped: int


class SeriesPoint(_Response):
    step: int
    epoch: int | None
    value: float
    reported_at: datetime


class JobMetrics(_Response):
    job_id: int
    trial: int | None = None
    series: dict[str, list[SeriesPoint]]


class ArtifactRecord(_Request):
    name: str = Field(min_length=1, max_length=512)
    uri: str = Field(min_length=1, max_length=4096)
    size: int = Field(ge=0, le=MAX_BIG_ID)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    kind: ArtifactKind


class RegisterArtifactsRequest(_Request):
    artifacts: list[ArtifactRecord] = Field(max_length=10_000)


class Artifact(_Response):
    name: str
    kind: str
    uri: str
    size: int
    sha256: str
    created_at: datetime


# ---- a sweep's trials (kept live by the sweep's driver with its job token) --------------------------------

TrialStatus = Literal["running", "retrying", "succeeded", "stopped", "failed", "cancelled"]
TRIAL_ENDED = ("succeeded", "stopped", "failed", "cancelled")


class TrialRecord(_Request):
    number: int = Field(ge=1, le=1_000_000)
    status: TrialStatus
    params: dict[str, Any] = Field(default_factory=dict)
    metric: float | None = None
    best_epoch: int | None = Field(default=None, ge=0, le=MAX_ID)
    epochs: int = Field(default=0, ge=0, le=MAX_ID)
    attempts: int = Field(default=1, ge=1, le=1000)
    checkpoint: str | None = Field(default=None, max_length=4096)
    error: str | None = Field(default=None, max_length=4000)
    started_at: float | None = Field(default=None, description="unix time")
    finished_at: float | None = Field(default=None, description="unix time")


class ReportTrialsRequest(_Request):
    trials: list[TrialRecord] = Field(max_length=10_000)


class ReportedTrials(_Response):
    accepted: int


class Trial(_Response):
    number: int
    status: TrialStatus
    params: dict[str, Any]
    metric: float | None = None
    best_epoch: int | None = None
    epochs: int = 0
    attempts: int = 1
    checkpoint: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class SweepProgress(_Response):
    trials: int = Field(description="how many the sweep runs in all")
    done: int
    running: int
    stopped_early: int
    failed: int
    best: float | None = None
    best_trial: int | None = None


class TrialList(_Response):
    job_id: int
    metric: str
    mode: Literal["min", "max"]
    progress: SweepProgress
    items: list[Trial] = Field(description="best first by the sweep's metric; trials without it last")

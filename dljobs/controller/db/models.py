"""ORM models (`...Model`). The API never returns these: services convert them to `dljobs.spec.api` bodies.

Designed for what comes next: metrics and artifacts carry a nullable `trial_id` for sweeps, jobs have a
`kind`, and later tables (trials, models, deployments) hang off `jobs.id`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dljobs.controller.db.base import Base, JSONDoc, UTCDateTime, utcnow

# SQLite: AUTOINCREMENT so that ids are never reused after a delete.
_AUTOINC = {"sqlite_autoincrement": True}
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class ProjectModel(Base):
    __tablename__ = "projects"
    __table_args__ = _AUTOINC

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    max_jobs: Mapped[int | None] = mapped_column(Integer)
    max_cpus: Mapped[float | None] = mapped_column(Float)
    max_gpus: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserModel(Base):
    __tablename__ = "users"
    __table_args__ = _AUTOINC

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MembershipModel(Base):
    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenModel(Base):
    """An API token. Only the SHA-256 of the secret is stored; `prefix` tells tokens apart in listings."""

    __tablename__ = "api_tokens"
    __table_args__ = _AUTOINC

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobModel(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("project_id", "submitted_by", "idempotency_key"),
        # the queue, in the order the scheduler reads it
        Index("ix_jobs_queue", "status", "priority", "id"),
        Index("ix_jobs_project_id_id", "project_id", "id"),
        Index("ix_jobs_project_id_name", "project_id", "name"),
        _AUTOINC,
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), default="job")  # job | sweep
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)  # 0 low, 1 normal, 2 high
    spec: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    submitted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    # what the scheduler reserves for the job while it is active
    cpus: Mapped[float] = mapped_column(Float)
    gpus: Mapped[float] = mapped_column(Float)
    accelerator: Mapped[str | None] = mapped_column(String(63))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer)
    timeout_s: Mapped[int] = mapped_column(Integer)
    launch_id: Mapped[str | None] = mapped_column(String(128))
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when Ray accepted the launch
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # retry backoff
    stop_reason: Mapped[str | None] = mapped_column(String(16))  # why it is CANCELLING: cancel | timeout
    report_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # the lease of the loop working on this row: lease, act outside the transaction, guarded update
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobEventModel(Base):
    """One row per status transition, with its reason: the job's history."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"), _AUTOINC)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)


class MetricModel(Base):
    """A metric series point reported by a running job (or one trial of a sweep)."""

    __tablename__ = "job_metrics"
    __table_args__ = (Index("ix_job_metrics_job_id_name_step", "job_id", "name", "step"), _AUTOINC)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    trial_id: Mapped[int | None] = mapped_column(BigIntId)
    name: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(BigIntId)
    epoch: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TrialModel(Base):
    """One trial of a sweep, kept live by the sweep's driver: its point, status, best metric and checkpoint.
    `number` counts from 1 within the sweep; metric points and artifacts name it in their `trial_id`."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("job_id", "number"), _AUTOINC)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(
        String(16)
    )  # running | retrying | succeeded | stopped | failed | cancelled
    params: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    metric: Mapped[float | None] = mapped_column(Float)  # the best value of the sweep's metric so far
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    checkpoint: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ArtifactModel(Base):
    """A file a job left in the artifact store, with its checksum."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "trial_id", "name"), _AUTOINC)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    trial_id: Mapped[int | None] = mapped_column(BigIntId)
    name: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32))
    uri: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CodeBundleModel(Base):
    """A zipped code directory, stored once per content hash."""

    __tablename__ = "code_bundles"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LeaseModel(Base):
    """A named lease for work that one controller at a time must do (the deployer's)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MetaModel(Base):
    """Facts about this installation, such as its id (part of every launch id, so that a new database
    never mistakes an old Ray job for one of its own)."""

    __tablename__ = "controller_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class WebhookModel(Base):
    """A project's webhook: where to POST (Slack-compatible JSON, signed with HMAC-SHA256) and for what."""

    __tablename__ = "webhooks"
    __table_args__ = _AUTOINC

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    # the signing key must be readable to sign with; it is shown once and never returned again
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list[str]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDeliveryModel(Base):
    """The outbox: one row per event to deliver, written in the transaction that caused the event."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        _AUTOINC,
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# ---- serving: the model registry, endpoints and what they measured ----------------------------------------


class RegisteredModelModel(Base):
    """A named model in a project; its versions come from jobs (or a sweep's best trial)."""

    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("project_id", "name"), _AUTOINC)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelVersionModel(Base):
    """One version of a registered model: where its artifacts are, how well it did, where it came from."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        UniqueConstraint("model_id", "job_id", "trial_id"),
        _AUTOINC,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16), default="none")  # none | staging | production | archived
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    trial_id: Mapped[int | None] = mapped_column(BigIntId)
    artifacts_uri: Mapped[str] = mapped_column(Text)  # the job's (or trial's) artifacts prefix
    task: Mapped[str | None] = mapped_column(String(32))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    card: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSONDoc)  # job, resolved spec, data fingerprint, code
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stage_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EndpointModel(Base):
    """A served model: the desired state the deployer loop makes true on Ray Serve.

    Traffic goes to `stable_version_id`, and `canary_percent` of it to `canary_version_id` once the
    canary's application is running (`canary_ready`). A version switched away from keeps its application
    until `draining_until`, so requests routed to it before the switch still find it.
    """

    __tablename__ = "endpoints"
    __table_args__ = _AUTOINC

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # deploying | ready | failed | deleting
    status_reason: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDoc)  # replicas, batching, limits, thresholds
    stable_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    canary_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    canary_percent: Mapped[float] = mapped_column(Float, default=0.0)
    canary_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    canary_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    draining_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    draining_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    generation: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every change of desired state
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EndpointEventModel(Base):
    """What happened to an endpoint: deployed, canary started, rolled back, promoted."""

    __tablename__ = "endpoint_events"
    __table_args__ = (Index("ix_endpoint_events_endpoint_id_id", "endpoint_id", "id"), _AUTOINC)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)


class EndpointKeyModel(Base):
    """An endpoint's API key. Only its SHA-256 is stored."""

    __tablename__ = "endpoint_keys"
    __table_args__ = _AUTOINC

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RateWindowModel(Base):
    """The rate limit's counter: requests granted to an endpoint in one second, shared by every controller."""

    __tablename__ = "endpoint_rate_windows"

    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # unix second
    granted: Mapped[int] = mapped_column(Integer, default=0)


class EndpointStatsModel(Base):
    """Measurements one controller took for one endpoint version over a short period (insert-only)."""

    __tablename__ = "endpoint_stats"
    __table_args__ = (
        Index("ix_endpoint_stats_endpoint_id_period_end", "endpoint_id", "period_end"),
        _AUTOINC,
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    version_id: Mapped[int | None] = mapped_column(Integer)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)  # 4xx: bad input, limits, rate
    inputs: Mapped[int] = mapped_column(Integer, default=0)
    latency: Mapped[dict[str, Any]] = mapped_column(JSONDoc)  # histogram: upper bound (ms) -> count
    predictions: Mapped[dict[str, Any]] = mapped_column(JSONDoc)  # class -> count, or value histogram
    features: Mapped[dict[str, Any]] = mapped_column(JSONDoc)  # feature -> bin counts (for PSI)

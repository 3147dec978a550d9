"""The serving contract: the job spec's `deploy:` section, and the registry and endpoint bodies of the API.

Shared by the controller, the SDK client and the Serve application (`dljobs.workloads.serving`), so it
imports neither torch, ray nor sqlalchemy.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dljobs.spec.base import Name, StrictModel

Stage = Literal["none", "staging", "production", "archived"]
STAGES: tuple[str, ...] = ("none", "staging", "production", "archived")
EndpointStatus = Literal["deploying", "ready", "failed", "deleting"]
ENDPOINT_KEY_PREFIX = "dlje_"
MAX_BATCH_INPUTS = 1024
_REPLICAS = re.compile(r"^(\d+)(?:\.\.(\d+))?$")
_MODEL_REF = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(?::(\d+|latest|staging|production))?$")


def parse_replicas(value: str | int) -> tuple[int, int]:
    """`2` or `1..4` as (min, max)."""
    match = _REPLICAS.match(str(value).strip())
    if not match:
        raise ValueError(f"'{value}' is not a replica range: use N or MIN..MAX, such as 1..4")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if low < 1 or high < low or high > 100:
        raise ValueError(f"'{value}': replicas go from at least 1 to at most 100, MIN <= MAX")
    return low, high


def parse_model_ref(value: str) -> tuple[str, str]:
    """`NAME[:VERSION]` as (name, version), version a number, latest, staging or production."""
    match = _MODEL_REF.match(value.strip())
    if not match:
        raise ValueError(
            f"'{value}' is not a model reference: use NAME or NAME:VERSION (NAME:3, NAME:production)"
        )
    return match.group(1), match.group(3) or "latest"


class ServingConfig(StrictModel):
    """How an endpoint serves: replicas, batching, limits and the canary's rollback thresholds."""

    replicas: str = Field(default="1", description="N or MIN..MAX: replicas autoscale between the bounds")
    num_cpus: float = Field(default=0.5, gt=0, le=64, description="CPUs per replica")
    num_gpus: float = Field(default=0.0, ge=0, le=8)
    max_batch_size: int = Field(default=32, ge=1, le=1024, description="inputs a replica runs at once")
    batch_wait_ms: float = Field(default=2.0, ge=0, le=1000, description="how long a batch waits to fill")
    max_ongoing_requests: int = Field(default=64, ge=1, le=10_000, description="per replica")
    max_queued_requests: int = Field(
        default=256, ge=1, le=100_000, description="per replica; beyond it requests get 503"
    )
    target_ongoing_requests: float = Field(default=8.0, gt=0, description="the autoscaler's target")
    rate_limit: float | None = Field(default=None, gt=0, description="requests per second, all replicas")
    max_inputs: int = Field(default=256, ge=1, le=MAX_BATCH_INPUTS, description="inputs in one request")
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="a request's time budget")
    max_error_rate: float = Field(default=0.05, ge=0, le=1, description="a canary above it is rolled back")
    max_p99_ms: float = Field(default=1000.0, gt=0, description="a canary above it is rolled back")
    min_requests: int = Field(default=20, ge=1, description="requests a canary gets before it is judged")

    @field_validator("replicas", mode="before")
    @classmethod
    def _replicas(cls, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("expected N or MIN..MAX")
        parse_replicas(value)
        return str(value).strip()

    @property
    def replica_bounds(self) -> tuple[int, int]:
        return parse_replicas(self.replicas)


class DeploySpec(ServingConfig):
    """The job spec's `deploy:` section: on success the job's model is registered and deployed."""

    name: Name = Field(description="the endpoint's name")
    model: Name | None = Field(default=None, description="the registry name; default: the job's name")
    canary: float = Field(default=0.0, ge=0, lt=100, description="percent of traffic a new version gets")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---- registry ---------------------------------------------------------------------------------------------


class RegisterModelRequest(_Request):
    name: Name
    job: str = Field(min_length=1, max_length=63, description="the job (id or name) that trained it")
    trial: int | None = Field(default=None, ge=0, description="a sweep's trial; default: its best")
    description: str | None = Field(default=None, max_length=4000)


class PromoteRequest(_Request):
    stage: Stage


class ModelVersion(_Response):
    model: str
    project: str
    version: int
    stage: Stage
    job_id: int
    trial_id: int | None = None
    task: str | None = None
    artifacts_uri: str
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime
    stage_changed_at: datetime | None = None
    card: dict[str, Any] | None = Field(default=None, description="the model card (shown by `models show`)")


class RegisteredModel(_Response):
    name: str
    project: str
    description: str | None = None
    created_at: datetime
    latest_version: int | None = None
    production_version: int | None = None
    versions: list[ModelVersion] = Field(default_factory=list)


# ---- endpoints --------------------------------------------------------------------------------------------


class DeployRequest(_Request):
    name: Name
    project: Name | None = Field(default=None, description="default: the model's project")
    model: str | None = Field(default=None, description="NAME[:VERSION] from the registry")
    job: str | None = Field(default=None, max_length=63, description="or a job: its model is registered")
    canary: float = Field(default=0.0, ge=0, lt=100, description="percent of traffic the new version gets")
    config: dict[str, Any] = Field(default_factory=dict, description="ServingConfig fields to set")

    @model_validator(mode="after")
    def _one_source(self) -> DeployRequest:
        if (self.model is None) == (self.job is None):
            raise ValueError("give exactly one of model (NAME[:VERSION]) or job")
        if self.model is not None:
            parse_model_ref(self.model)
        ServingConfig.model_validate(self.config)
        return self


class PromoteCanaryRequest(_Request):
    pass


class CreateKeyRequest(_Request):
    name: str = Field(default="default", min_length=1, max_length=64, pattern=r"^[\w.@-]+$")


class EndpointKey(_Response):
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class CreatedEndpointKey(EndpointKey):
    key: str = Field(description="shown once; only its hash is stored")


class VersionRef(_Response):
    model: str
    version: int


class EndpointEvent(_Response):
    created_at: datetime
    kind: str
    message: str


class Endpoint(_Response):
    name: str
    project: str
    status: EndpointStatus
    status_reason: str | None = None
    stable: VersionRef | None = None
    canary: VersionRef | None = None
    canary_percent: float = 0.0
    canary_ready: bool = False
    config: dict[str, Any]
    url: str = Field(description="where to POST predictions")
    created_at: datetime
    updated_at: datetime
    events: list[EndpointEvent] = Field(default_factory=list)


class VersionStats(_Response):
    version: int | None
    requests: int
    errors: int
    rejected: int
    error_rate: float
    latency_ms: dict[str, float | None] = Field(description="p50, p90, p99")
    predictions: dict[str, float]
    drift_psi: dict[str, float] = Field(default_factory=dict, description="per input feature")
    drift_psi_max: float | None = None


class EndpointStats(_Response):
    endpoint: str
    window_s: int
    versions: list[VersionStats]


class DeployedEndpoint(Endpoint):
    key: CreatedEndpointKey | None = Field(default=None, description="the first API key, shown once")


class PredictRequest(_Request):
    inputs: list[Any] = Field(min_length=1, max_length=MAX_BATCH_INPUTS)


class Prediction(_Response):
    model: str
    version: int
    predictions: list[Any]

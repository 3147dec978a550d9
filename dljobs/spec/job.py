"""The job spec, version 1: what a user writes, and (with defaults filled in) what the controller stores."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from dljobs.spec.base import ByteSize, Duration, Name, StrictModel
from dljobs.spec.data import DataSpec
from dljobs.spec.durations import format_duration
from dljobs.spec.errors import shown
from dljobs.spec.params import BUILTIN_MODELS
from dljobs.spec.serving import DeploySpec
from dljobs.spec.suggest import did_you_mean
from dljobs.spec.sweep import SweepSpec
from dljobs.spec.training import TrainingSpec

BUNDLE_PREFIX = "bundle://"
MAX_TIMEOUT = 366 * 86400
MAX_MEMORY_PER_WORKER = 64 * 2**40  # 64 TiB: no machine has more
_BUNDLE = re.compile(r"^bundle://[0-9a-f]{64}$")
_ENTRYPOINT = re.compile(r"^[\w./-]+\.py:[A-Za-z_]\w*$")
_JOB_REF = re.compile(r"^job://[0-9]{1,18}$")  # ASCII digits that fit a 64-bit id
Priority = Literal["low", "normal", "high"]
PRIORITY_RANK: dict[str, int] = {"low": 0, "normal": 1, "high": 2}


class WorkloadSpec(StrictModel):
    """What to run: a built-in `model`, or your own `code` with an `entrypoint` or a `command`."""

    model: str | None = Field(default=None, description="a built-in model: " + ", ".join(BUILTIN_MODELS))
    params: dict[str, Any] = Field(default_factory=dict, description="the built-in model's parameters")
    code: str | None = Field(default=None, description="a local directory, shipped with the job")
    entrypoint: str | None = Field(default=None, description="file.py:function, run on every worker")
    command: str | None = Field(default=None, max_length=16384, description="a command run once")
    init_from: str | None = Field(default=None, description="job://ID or s3://... weights to start from")
    freeze: list[str] = Field(default_factory=list, max_length=256, description="layer names kept fixed")

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        if value is not None and value not in BUILTIN_MODELS:
            raise ValueError(
                f"unknown model {shown(value)}{did_you_mean(value, BUILTIN_MODELS)}; "
                f"built-in models: {', '.join(BUILTIN_MODELS)}"
            )
        return value

    @field_validator("params")
    @classmethod
    def _params_fit_model(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        model = info.data.get("model")
        if model is None:
            return value  # custom code reads its own params
        return BUILTIN_MODELS[model].model_validate(value).model_dump(mode="json")

    @field_validator("code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value or any(ord(c) < 32 for c in value):
            raise ValueError("must be a directory path without control characters")
        if value.startswith(BUNDLE_PREFIX) and not _BUNDLE.match(value):
            raise ValueError("a bundle reference is bundle:// followed by 64 hex digits")
        return value

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _ENTRYPOINT.match(value) or ".." in value.split(":")[0].split("/"):
            raise ValueError(
                f"{shown(value)} must be FILE.py:FUNCTION inside the code directory, e.g. train.py:train_loop"
            )
        return value

    @field_validator("init_from")
    @classmethod
    def _init_from(cls, value: str | None) -> str | None:
        if value is not None and not (_JOB_REF.match(value) or value.startswith("s3://")):
            raise ValueError(f"{shown(value)} must be job://ID or an s3:// model path")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> WorkloadSpec:
        kinds = [k for k in ("model", "entrypoint", "command") if getattr(self, k)]
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else "none"
            raise ValueError(f"set exactly one of model, entrypoint or command (found {found})")
        if self.entrypoint and not self.code:
            raise ValueError("code: an entrypoint needs code, the directory that holds it")
        if (self.init_from or self.freeze) and not self.model:
            blamed = "init_from" if self.init_from else "freeze"
            raise ValueError(f"{blamed}: init_from and freeze apply to built-in models")
        if self.params and self.command:
            raise ValueError("params: params go to a model or an entrypoint, not to a command")
        return self

    @property
    def kind(self) -> Literal["model", "entrypoint", "command"]:
        return "model" if self.model else "entrypoint" if self.entrypoint else "command"


class ResourcesSpec(StrictModel):
    workers: int = Field(default=1, ge=1, le=1024)
    cpus_per_worker: float = Field(default=1.0, gt=0.0, le=512.0)
    gpus_per_worker: float = Field(default=0.0, ge=0.0, le=16.0)
    accelerator: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
        description="GPU type, such as A100 or H100",
    )
    memory_per_worker: ByteSize | None = Field(default=None, description="such as 8Gi")
    placement: Literal["pack", "spread", "strict_pack", "strict_spread"] = "pack"

    @model_validator(mode="after")
    def _consistent(self) -> ResourcesSpec:
        if self.accelerator and self.gpus_per_worker <= 0:
            raise ValueError("accelerator: needs gpus_per_worker > 0")
        if self.gpus_per_worker > 1 and self.gpus_per_worker != int(self.gpus_per_worker):
            raise ValueError("gpus_per_worker: above 1 it must be a whole number")
        return self

    @field_validator("memory_per_worker")
    @classmethod
    def _memory_fits_a_machine(cls, value: int | None) -> int | None:
        if value is not None and value > MAX_MEMORY_PER_WORKER:
            raise ValueError(f"{value / 2**40:,.0f}Ti is more than any machine has (at most 64Ti)")
        return value

    @property
    def total_cpus(self) -> float:
        return self.workers * self.cpus_per_worker

    @property
    def total_gpus(self) -> float:
        return self.workers * self.gpus_per_worker


class JobSpec(StrictModel):
    version: Literal[1] = 1
    name: Name
    project: Name = "default"
    priority: Priority = "normal"
    workload: WorkloadSpec
    data: DataSpec | None = Field(default=None, validate_default=True)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    retries: int = Field(default=2, ge=0, le=100, description="restarts after infrastructure failures")
    timeout: Duration = Field(default=24 * 3600, description="such as 90m or 2h; at most 366d")
    sweep: SweepSpec | None = Field(default=None, description="search hyperparameters: one trial per point")
    deploy: DeploySpec | None = Field(
        default=None, description="on success, register the model and serve it at this endpoint"
    )

    @field_validator("timeout")
    @classmethod
    def _timeout_at_most_a_year(cls, value: int) -> int:
        if value > MAX_TIMEOUT:
            raise ValueError(f"{format_duration(value)} is longer than the limit of 366d")
        return value

    @model_validator(mode="after")
    def _precision_fits_hardware(self) -> JobSpec:
        if self.training.precision == "fp16" and self.resources.gpus_per_worker <= 0:
            raise ValueError(
                "training.precision: fp16 needs GPUs (resources.gpus_per_worker > 0); use bf16 on CPUs"
            )
        return self

    @model_validator(mode="after")
    def _sweep_trains(self) -> JobSpec:
        if self.sweep is not None and self.workload.kind == "command":
            raise ValueError("sweep: a sweep trains a built-in model or an entrypoint, not a command")
        return self

    @model_validator(mode="after")
    def _deploy_needs_a_model(self) -> JobSpec:
        if self.deploy is not None and not self.workload.model:
            raise ValueError("deploy: only built-in models are served (custom code leaves no model.ts)")
        return self

    @property
    def kind(self) -> Literal["job", "sweep"]:
        return "sweep" if self.sweep is not None else "job"

    @field_validator("data")
    @classmethod
    def _data_for_models(cls, value: DataSpec | None, info: ValidationInfo) -> DataSpec | None:
        workload = info.data.get("workload")
        if value is None and workload is not None and workload.model:
            raise ValueError("a built-in model needs data: add a data section with a source")
        return value

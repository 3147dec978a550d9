"""The `training:` section: every practice the seed tutorials teach, as a switch."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from dljobs.spec.base import Mode, StrictModel

METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
# Written as a list in YAML and JSON; strict models take a list for a tuple only when told to.
Betas = Annotated[tuple[float, float], BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)]


class OptimizerSpec(StrictModel):
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "adamw"
    lr: float = Field(default=1e-3, gt=0.0, le=10.0)
    weight_decay: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="default: 0.01 for adamw (decoupled), 0 for the others (where it is an L2 term in the "
        "gradient, strong enough to stall a model's embeddings)",
    )
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0, description="sgd and rmsprop")
    nesterov: bool = Field(default=False, description="sgd with momentum > 0")
    betas: Betas = Field(default=(0.9, 0.999), description="adam and adamw")
    eps: float = Field(default=1e-8, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> OptimizerSpec:
        if self.weight_decay is None:
            self.weight_decay = 0.01 if self.name == "adamw" else 0.0
        if self.nesterov and (self.name != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov: needs name sgd and momentum > 0")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError("betas: each must be at least 0 and below 1")
        return self


class ScheduleSpec(StrictModel):
    """A learning-rate schedule, with an optional linear warmup in front of any of them."""

    name: Literal["none", "step", "exponential", "cosine", "linear", "reduce_on_plateau", "one_cycle"] = (
        "none"
    )
    warmup_steps: int = Field(default=0, ge=0, le=10_000_000)
    step_size: int = Field(default=10, ge=1, le=1_000_000, description="step: epochs between decays")
    gamma: float = Field(default=0.1, gt=0.0, le=1.0, description="step and exponential: decay factor")
    min_lr: float = Field(default=0.0, ge=0.0, le=10.0, description="cosine and linear: final learning rate")
    patience: int = Field(default=5, ge=0, le=10_000, description="reduce_on_plateau: epochs without gain")
    factor: float = Field(default=0.1, gt=0.0, lt=1.0, description="reduce_on_plateau: decay factor")
    monitor: str = Field(default="val_loss", pattern=METRIC_PATTERN, description="reduce_on_plateau")
    max_lr: float | None = Field(
        default=None, gt=0.0, le=10.0, description="one_cycle: peak (default 10 x lr)"
    )


class EarlyStoppingSpec(StrictModel):
    metric: str = Field(default="val_loss", pattern=METRIC_PATTERN)
    mode: Mode = "auto"
    patience: int = Field(default=5, ge=1, le=100_000)
    min_delta: float = Field(default=0.0, ge=0.0)


class TrainingSpec(StrictModel):
    epochs: int = Field(default=10, ge=1, le=100_000)
    batch_size: int = Field(default=64, ge=1, le=1_048_576, description="per worker")
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    grad_clip_norm: float | None = Field(default=None, gt=0.0, le=1e6)
    grad_accumulation: int = Field(default=1, ge=1, le=4096)
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    early_stopping: EarlyStoppingSpec | None = None
    checkpoint_every: int = Field(default=1, ge=1, le=100_000, description="epochs between checkpoints")
    keep_checkpoints: int = Field(default=2, ge=1, le=1000)
    best_metric: str = Field(default="val_loss", pattern=METRIC_PATTERN, description="what 'best' means")
    best_mode: Mode = "auto"
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1, description="chosen and recorded when unset")
    tensorboard: bool = Field(default=False, description="write TensorBoard event files beside the artifacts")

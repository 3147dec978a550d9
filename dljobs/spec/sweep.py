"""The `sweep:` section: a job that searches hyperparameters with Ray Tune, one TorchTrainer per trial.

The shape is checked here; whether each path in `space` exists and whether its values fit the field is
checked against the whole spec in `dljobs.spec.loading` (it needs the job's workload to know the params).
A trial's spec is the job's spec with the trial's point written in at those paths (`trial_document`).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dljobs.spec.base import Duration, Mode, StrictModel, resolve_mode
from dljobs.spec.errors import shown
from dljobs.spec.training import METRIC_PATTERN

Algorithm = Literal["grid", "random", "bayesian", "asha", "hyperband", "pbt", "median"]
ALGORITHMS: tuple[str, ...] = ("grid", "random", "bayesian", "asha", "hyperband", "pbt", "median")
SCHEDULERS = ("asha", "hyperband", "median", "pbt")  # they stop (or perturb) trials; a searcher proposes
DEFAULT_TRIALS = 10
MAX_VALUES = 1000
SWEEPABLE_ROOTS = ("training.", "workload.params.")
UNSWEEPABLE = ("training.seed",)
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice", "grid")
_PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$")


class Distribution(StrictModel):
    """One entry of `space`: exactly one of these keys."""

    uniform: list[float] | None = Field(default=None, description="[low, high]: any number between")
    loguniform: list[float] | None = Field(default=None, description="[low, high], both > 0: log scale")
    randint: list[int] | None = Field(default=None, description="[low, high]: a whole number, both included")
    choice: list[Any] | None = Field(default=None, min_length=1, max_length=MAX_VALUES)
    grid: list[Any] | None = Field(default=None, min_length=1, max_length=MAX_VALUES)

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [name for name in DISTRIBUTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            found = " and ".join(given) if given else "none"
            raise ValueError(f"set exactly one of {', '.join(DISTRIBUTIONS)} (found {found})")
        kind = given[0]
        if kind in ("uniform", "loguniform", "randint"):
            bounds = getattr(self, kind)
            if len(bounds) != 2:
                raise ValueError(f"{kind}: expected [low, high], got {len(bounds)} number(s)")
            low, high = bounds
            if not all(math.isfinite(b) for b in bounds):
                raise ValueError(f"{kind}: bounds must be finite numbers")
            if not low < high:
                raise ValueError(f"{kind}: low ({low:g}) must be below high ({high:g})")
            if kind == "loguniform" and low <= 0:
                raise ValueError(f"loguniform: low must be above 0 for a log scale, got {low:g}")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in DISTRIBUTIONS if getattr(self, name) is not None)

    @property
    def args(self) -> list[Any]:
        return list(getattr(self, self.kind))

    def samples(self) -> list[Any]:
        """Values this distribution can give that together test a field: its ends, or every value."""
        low_high = self.args
        if self.kind in ("choice", "grid"):
            return low_high
        if self.kind == "randint":
            return [int(low_high[0]), int(low_high[1])]
        return [float(low_high[0]), float(low_high[1])]


class SweepBudget(StrictModel):
    """When to stop proposing trials: the first of these limits that is reached."""

    trial_epochs: int | None = Field(default=None, ge=1, le=100_000_000, description="epochs, all trials")
    max_wall: Duration | None = Field(default=None, description="wall-clock time of the sweep, such as 2h")
    gpu_hours: float | None = Field(default=None, gt=0.0, le=1e7, description="GPU time of all trials")


class SweepSpec(StrictModel):
    metric: str = Field(
        pattern=METRIC_PATTERN, description="what the trials are ranked by, e.g. val_accuracy"
    )
    mode: Mode = "auto"
    algorithm: Algorithm = "random"
    searcher: Literal["random", "bayesian"] = Field(
        default="random", description="what proposes points to a scheduler (asha, hyperband, median, pbt)"
    )
    trials: int | None = Field(
        default=None, ge=1, le=10_000, description=f"default: the grid's size, or {DEFAULT_TRIALS}"
    )
    max_concurrent: int | None = Field(
        default=None, ge=1, le=1024, description="default: what the cluster and the project's quota hold"
    )
    budget: SweepBudget = Field(default_factory=SweepBudget)
    space: dict[str, Distribution] = Field(min_length=1, max_length=64)
    trial_retries: int = Field(default=1, ge=0, le=20, description="restarts of a failed trial")
    grace_epochs: int = Field(default=1, ge=1, le=100_000, description="epochs before a trial may be stopped")
    reduction_factor: int = Field(default=3, ge=2, le=16, description="asha and hyperband")

    @field_validator("space")
    @classmethod
    def _paths(cls, value: dict[str, Distribution]) -> dict[str, Distribution]:
        for path in value:
            if not _PATH.match(path):
                raise ValueError(f"{path}: {shown(path)} is not a field path such as training.optimizer.lr")
            if not path.startswith(SWEEPABLE_ROOTS) or path in UNSWEEPABLE:
                raise ValueError(
                    f"{path}: a sweep searches fields under training and workload.params "
                    "(resources, data and the seed are the same for every trial)"
                )
        return value

    @model_validator(mode="after")
    def _fits_algorithm(self) -> SweepSpec:
        grids = {path: d for path, d in self.space.items() if d.kind == "grid"}
        if self.algorithm == "grid":
            other = next((path for path, d in self.space.items() if d.kind != "grid"), None)
            if other is not None:
                raise ValueError(f"space: {other}: the grid algorithm takes grid entries only")
        bayesian = self.algorithm == "bayesian" or (
            self.algorithm in SCHEDULERS and self.algorithm != "pbt" and self.searcher == "bayesian"
        )
        if bayesian and grids:
            raise ValueError(f"space: {next(iter(grids))}: a bayesian search takes choice, not grid")
        if self.algorithm == "pbt" and grids:
            raise ValueError(f"space: {next(iter(grids))}: pbt mutates values; use choice, not grid")
        size = self.grid_size
        if self.trials is not None and self.trials % size:
            raise ValueError(f"trials: the grid has {size} points; trials must be a multiple of {size}")
        return self

    @property
    def grid_size(self) -> int:
        return math.prod(len(d.args) for d in self.space.values() if d.kind == "grid")

    @property
    def total_trials(self) -> int:
        if self.trials is not None:
            return self.trials
        size = self.grid_size
        return size if self.algorithm == "grid" else size * math.ceil(DEFAULT_TRIALS / size)

    @property
    def resolved_mode(self) -> Literal["min", "max"]:
        return resolve_mode(self.metric, self.mode)


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Write `value` at the dotted `path`, making the sections on the way (an unset early_stopping)."""
    parts = path.split(".")
    node = document
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def trial_document(spec_document: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """A trial's spec: the job's spec without its sweep, the point written in, and 'best' meaning what the
    sweep ranks by (so that the trial keeps the checkpoint the sweep wants)."""
    document = copy.deepcopy(spec_document)
    sweep = document.pop("sweep", None) or {}
    for path, value in point.items():
        set_path(document, path, value)
    if sweep.get("metric"):
        training = document.setdefault("training", {})
        training["best_metric"] = sweep["metric"]
        training["best_mode"] = sweep.get("mode", "auto")
    return document

"""Optimizers and learning-rate schedules from `training.optimizer` and `training.schedule`.

A schedule here is one object per optimizer that sets each parameter group's learning rate itself:
lr = base_lr x warmup(step) x decay(step, epoch) x plateau_scale. Two granularities, each stepped where it
belongs: `after_step()` after every optimizer step (warmup, cosine, linear, one-cycle), `after_epoch()` at
each epoch's end (step, exponential, reduce-on-plateau). Its whole state is two counters and the plateau
bookkeeping, so a checkpoint restores it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from dljobs.spec.base import resolve_mode
from dljobs.spec.training import OptimizerSpec, ScheduleSpec
from dljobs.workloads.errors import WorkloadError

ONE_CYCLE_PEAK_FRACTION = 0.3  # share of the steps spent rising to max_lr
ONE_CYCLE_FINAL_DIVISOR = 1e4  # one-cycle ends at lr / this


def parameter_groups(
    parameters: Iterable[tuple[str, nn.Parameter]], weight_decay: float
) -> list[dict[str, Any]]:
    """Trainable parameters in two groups: weights decay, biases and normalization scales (1-D) do not."""
    decay, no_decay = [], []
    for _, parameter in parameters:
        if not parameter.requires_grad:
            continue
        (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def build_optimizer(module: nn.Module, spec: OptimizerSpec, lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer `spec` names over `module`'s trainable parameters, at `lr` (default: spec.lr)."""
    groups = parameter_groups(module.named_parameters(), spec.weight_decay or 0.0)
    if not groups:
        raise WorkloadError(
            "every parameter of the model is frozen: nothing is left to train", field="workload.freeze"
        )
    rate = spec.lr if lr is None else lr
    if spec.name == "sgd":
        return torch.optim.SGD(groups, lr=rate, momentum=spec.momentum, nesterov=spec.nesterov)
    if spec.name == "adam":
        return torch.optim.Adam(groups, lr=rate, betas=spec.betas, eps=spec.eps)
    if spec.name == "adamw":
        return torch.optim.AdamW(groups, lr=rate, betas=spec.betas, eps=spec.eps)
    return torch.optim.RMSprop(groups, lr=rate, momentum=spec.momentum, eps=spec.eps)


class LearningRateSchedule:
    """Sets the learning rate of every parameter group of one optimizer, step by step and epoch by epoch."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        spec: ScheduleSpec,
        *,
        total_steps: int,
        monitor: str | None = None,
    ) -> None:
        """`monitor`: the metric reduce_on_plateau watches, as resolved for the job (default spec.monitor)."""
        self.optimizer = optimizer
        self.spec = spec
        self.monitor = monitor or spec.monitor
        self.total_steps = max(1, total_steps)
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self.step = 0  # optimizer steps taken
        self.epoch = 0  # epochs finished
        self.plateau_scale = 1.0
        self.plateau_best: float | None = None
        self.plateau_bad_epochs = 0
        self._apply()

    # -- the rule ---------------------------------------------------------------------------------------

    def lr_for(self, base_lr: float) -> float:
        """The learning rate of the next optimizer step for a group whose configured rate is `base_lr`."""
        warmup = self.spec.warmup_steps
        warm = (self.step + 1) / warmup if self.step < warmup else 1.0
        return warm * self._decayed(base_lr, self._progress())

    def _progress(self) -> float:
        """How far the per-step decay has gone: 0 until warmup ends, 1 at the last step."""
        warmup = self.spec.warmup_steps
        span = max(1, self.total_steps - warmup)
        return min(1.0, max(0.0, (self.step - warmup) / span))

    def _decayed(self, base_lr: float, progress: float) -> float:
        spec = self.spec
        if spec.name == "step":
            return base_lr * spec.gamma ** (self.epoch // spec.step_size)
        if spec.name == "exponential":
            return base_lr * spec.gamma**self.epoch
        if spec.name == "reduce_on_plateau":
            return base_lr * self.plateau_scale
        if spec.name == "cosine":
            return _cosine_between(base_lr, spec.min_lr, progress)
        if spec.name == "linear":
            return base_lr + (spec.min_lr - base_lr) * progress
        if spec.name == "one_cycle":
            return _one_cycle(base_lr, spec.max_lr or 10.0 * base_lr, progress)
        return base_lr

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_for(base)

    # -- the two clocks -----------------------------------------------------------------------------------

    def after_step(self) -> None:
        self.step += 1
        self._apply()

    def after_epoch(self, metrics: dict[str, float]) -> None:
        self.epoch += 1
        if self.spec.name == "reduce_on_plateau":
            self._plateau(metrics.get(self.monitor))
        self._apply()

    def _plateau(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        mode = resolve_mode(self.monitor, "auto")
        improved = self.plateau_best is None or (
            value < self.plateau_best if mode == "min" else value > self.plateau_best
        )
        if improved:
            self.plateau_best, self.plateau_bad_epochs = value, 0
            return
        self.plateau_bad_epochs += 1
        if self.plateau_bad_epochs > self.spec.patience:
            self.plateau_scale *= self.spec.factor
            self.plateau_bad_epochs = 0

    @property
    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "plateau_scale": self.plateau_scale,
            "plateau_best": self.plateau_best,
            "plateau_bad_epochs": self.plateau_bad_epochs,
            "base_lrs": list(self.base_lrs),
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.plateau_scale = float(state["plateau_scale"])
        self.plateau_best = state["plateau_best"]
        self.plateau_bad_epochs = int(state["plateau_bad_epochs"])
        self.base_lrs = [float(v) for v in state["base_lrs"]]
        self._apply()


def _one_cycle(base_lr: float, max_lr: float, progress: float) -> float:
    """Cosine rise from base_lr to max_lr over the first 30% of the steps, then cosine fall to base/1e4."""
    if progress < ONE_CYCLE_PEAK_FRACTION:
        return _cosine_between(base_lr, max_lr, progress / ONE_CYCLE_PEAK_FRACTION)
    tail = (progress - ONE_CYCLE_PEAK_FRACTION) / (1.0 - ONE_CYCLE_PEAK_FRACTION)
    return _cosine_between(max_lr, base_lr / ONE_CYCLE_FINAL_DIVISOR, tail)


def _cosine_between(start: float, end: float, progress: float) -> float:
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))

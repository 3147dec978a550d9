"""One epoch of training and one pass of evaluation, for supervised models, autoencoders and GANs.

Free of Ray: the loop in `loop.py` supplies the batches, the (DDP-wrapped) modules and a callback that may
interrupt an epoch between optimizer steps (preemption). Gradient accumulation runs `no_sync` on the micro
steps before the last one of each group, so DDP all-reduces once per optimizer step; each micro step's loss
is divided by its group's size, so accumulating k batches of b equals one batch of k x b.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dljobs.spec.training import TrainingSpec
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.train.metrics import EvaluationResult, Mean, evaluation_stats
from dljobs.workloads.train.optim import LearningRateSchedule
from dljobs.workloads.train.precision import NOTHING, Precision

Interrupt = Callable[[int], bool]  # called after each optimizer step with the batches done so far


def _never(_: int) -> bool:
    return False


@dataclass
class Optimization:
    """One optimizer with its schedule and gradient scaler, and the parameters it clips."""

    optimizer: torch.optim.Optimizer
    schedule: LearningRateSchedule
    scaler: torch.amp.GradScaler
    parameters: list[nn.Parameter] = field(default_factory=list)

    def step(self, clip_norm: float | None) -> None:
        if clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.parameters, clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.after_step()

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])


@dataclass
class EpochProgress:
    """A training epoch so far: batches done, samples seen, running losses (checkpointed mid-epoch)."""

    batches_done: int = 0
    samples: int = 0
    seconds: float = 0.0
    losses: dict[str, Mean] = field(default_factory=dict)
    completed: bool = False

    def loss(self, name: str) -> Mean:
        mean = self.losses.get(name)
        if mean is None:
            mean = self.losses[name] = Mean()
        return mean

    def state_dict(self) -> dict[str, Any]:
        return {
            "batches_done": self.batches_done,
            "samples": self.samples,
            "seconds": self.seconds,
            "losses": {name: mean.state_dict() for name, mean in self.losses.items()},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpochProgress:
        progress = cls(int(state["batches_done"]), int(state["samples"]), float(state["seconds"]))
        for name, mean in state["losses"].items():
            progress.loss(name).load_state_dict(mean)
        return progress


def micro_steps(
    num_batches: int | None, accumulation: int, start: int = 0
) -> Iterator[tuple[int, bool, int]]:
    """(batch index, is the group's last micro step, group size) for each batch from `start` on."""
    index = start
    while num_batches is None or index < num_batches:
        group_start = index - index % accumulation
        size = accumulation if num_batches is None else min(accumulation, num_batches - group_start)
        yield index, index - group_start == size - 1, size
        index += 1


def no_sync(module: nn.Module, syncing: bool) -> contextlib.AbstractContextManager[Any]:
    """DDP's no_sync on a micro step that does not end its group; nothing otherwise."""
    if not syncing and isinstance(module, DistributedDataParallel):
        return module.no_sync()
    return NOTHING


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for `module`'s parameters inside the block (their own flags come back after)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def _inputs_targets(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, (list, tuple)):
        return batch[0], batch[1] if len(batch) > 1 else batch[0]
    return batch, batch


class SupervisedEngine:
    """Classification, regression and reconstruction (the target of an autoencoder is its input)."""

    def __init__(
        self,
        model: nn.Module,
        core: nn.Module,
        info: DataInfo,
        training: TrainingSpec,
        precision: Precision,
        optimization: Optimization,
        augmenter: Callable[[torch.Tensor, torch.Tensor], Any] | None = None,
    ) -> None:
        self.model, self.core, self.info, self.training = model, core, info, training
        self.precision, self.optimization, self.augmenter = precision, optimization, augmenter
        self.global_step = 0

    @property
    def optimizations(self) -> list[Optimization]:
        return [self.optimization]

    def criterion(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss (mean over the batch; label smoothing for classes)."""
        if self.info.task == "classification":
            return F.cross_entropy(outputs.float(), targets, label_smoothing=self.training.label_smoothing)
        return F.mse_loss(outputs.float(), targets.float().reshape(outputs.shape))

    def train_epoch(
        self,
        batches: Iterable[Any],
        *,
        num_batches: int | None,
        progress: EpochProgress | None = None,
        interrupt: Interrupt = _never,
    ) -> EpochProgress:
        progress = progress or EpochProgress()
        accumulation, clip = self.training.grad_accumulation, self.training.grad_clip_norm
        self.model.train()
        started = time.perf_counter()
        steps = micro_steps(num_batches, accumulation, progress.batches_done)
        pending = False
        for batch, (_, last, group) in zip(batches, steps, strict=False):
            inputs, targets = self.precision.to_device(_inputs_targets(batch))
            with no_sync(self.model, last):
                augmented = self.augmenter(inputs, targets) if self.augmenter else None
                with self.precision.autocast():
                    if augmented is not None:
                        outputs = self.model(augmented.inputs)
                        loss = augmented.loss(self.criterion, outputs)
                    else:
                        outputs = self.model(inputs)
                        loss = self.criterion(outputs, targets)
                self.optimization.backward(loss / group if group > 1 else loss)
            pending = not last
            progress.loss("train_loss").add(loss, int(inputs.shape[0]))
            progress.samples += int(inputs.shape[0])
            progress.batches_done += 1
            if last:
                self.optimization.step(clip)
                self.global_step += 1
                if interrupt(progress.batches_done):
                    progress.seconds += time.perf_counter() - started
                    return progress
        if pending:  # a stream ended inside a group: step on what it holds
            self.optimization.step(clip)
            self.global_step += 1
        progress.seconds += time.perf_counter() - started
        progress.completed = True
        return progress

    def evaluate(self, batches: Iterable[Any], prefix: str) -> EvaluationResult:
        return evaluate_model(self.core, self.info, self.precision, batches, prefix)


@torch.no_grad()
def evaluate_model(
    core: nn.Module, info: DataInfo, precision: Precision, batches: Iterable[Any], prefix: str
) -> EvaluationResult:
    """Metrics of a supervised model on `batches` (combined over workers when there are several)."""
    core.eval()
    stats = evaluation_stats(info)
    for batch in batches:
        inputs, targets = precision.to_device(_inputs_targets(batch))
        with precision.autocast():
            outputs = core(inputs)
        if info.task == "classification":
            loss_sum = float(F.cross_entropy(outputs.float(), targets, reduction="sum"))
        else:
            loss_sum = 0.0
        stats.update(outputs, targets, loss_sum)
    return stats.result(prefix)


class GANEngine:
    """A discriminator step, then a generator step (non-saturating loss), on every batch of real data."""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        core: nn.Module,
        training: TrainingSpec,
        precision: Precision,
        generator_optimization: Optimization,
        discriminator_optimization: Optimization,
        *,
        noise: torch.Generator,
        real_label: float,
        augmenter: Callable[[torch.Tensor, torch.Tensor], Any] | None = None,
    ) -> None:
        self.generator, self.discriminator, self.core = generator, discriminator, core
        self.training, self.precision = training, precision
        self.g_opt, self.d_opt = generator_optimization, discriminator_optimization
        self.noise, self.real_label, self.augmenter = noise, real_label, augmenter
        self.global_step = 0

    @property
    def optimizations(self) -> list[Optimization]:
        return [self.g_opt, self.d_opt]

    def train_epoch(
        self,
        batches: Iterable[Any],
        *,
        num_batches: int | None,
        progress: EpochProgress | None = None,
        interrupt: Interrupt = _never,
    ) -> EpochProgress:
        progress = progress or EpochProgress()
        accumulation, clip = self.training.grad_accumulation, self.training.grad_clip_norm
        self.generator.train()
        self.discriminator.train()
        critic: nn.Module = self.core.discriminator  # the generator step bypasses DDP on the discriminator
        started = time.perf_counter()
        steps = micro_steps(num_batches, accumulation, progress.batches_done)
        pending = False
        for batch, (_, last, group) in zip(batches, steps, strict=False):
            real, _ = self.precision.to_device(_inputs_targets(batch))
            if self.augmenter is not None:
                real = self.augmenter(real, real).inputs
            size = int(real.shape[0])
            latent = torch.randn(size, self.core.latent_dim, generator=self.noise).to(real.device)
            with no_sync(self.discriminator, last), no_sync(self.generator, last):
                with self.precision.autocast():
                    fake = self.generator(latent)
                    logits = self.discriminator(torch.cat([real, fake.detach().to(real.dtype)])).float()
                    d_loss = F.binary_cross_entropy_with_logits(
                        logits[:size], torch.full_like(logits[:size], self.real_label)
                    ) + F.binary_cross_entropy_with_logits(logits[size:], torch.zeros_like(logits[size:]))
                self.d_opt.backward(d_loss / group if group > 1 else d_loss)
                if last:
                    self.d_opt.step(clip)
                with frozen(critic):
                    with self.precision.autocast():
                        verdict = critic(fake).float()
                        g_loss = F.binary_cross_entropy_with_logits(verdict, torch.ones_like(verdict))
                    self.g_opt.backward(g_loss / group if group > 1 else g_loss)
            pending = not last
            progress.loss("d_loss").add(d_loss, size)
            progress.loss("g_loss").add(g_loss, size)
            progress.samples += size
            progress.batches_done += 1
            if last:
                self.g_opt.step(clip)
                self.global_step += 1
                if interrupt(progress.batches_done):
                    progress.seconds += time.perf_counter() - started
                    return progress
        if pending:
            self.d_opt.step(clip)
            self.g_opt.step(clip)
            self.global_step += 1
        progress.seconds += time.perf_counter() - started
        progress.completed = True
        return progress

    def evaluate(self, batches: Iterable[Any], prefix: str) -> EvaluationResult:
        del batches, prefix
        return EvaluationResult({})

"""The epoch engine on one process: accumulation, clipping, bf16 autocast, label smoothing, the GAN step,
and checkpoints that restore a run exactly (at an epoch's end and in its middle)."""

from __future__ import annotations

import os

from dljobs.workloads.train.cpu_features import cpu_bf16_env

# bf16 runs in this test process: give it what dljobs gives CPU workers (oneDNN reads it once, at first use)
os.environ.update(cpu_bf16_env("bf16", use_gpu=False))

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dljobs.spec.training import OptimizerSpec, ScheduleSpec, TrainingSpec
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.train import checkpoints as ckpt
from dljobs.workloads.train.engine import (
    EpochProgress,
    GANEngine,
    Optimization,
    SupervisedEngine,
    micro_steps,
)
from dljobs.workloads.train.loaders import train_loader
from dljobs.workloads.train.optim import LearningRateSchedule, build_optimizer
from dljobs.workloads.train.precision import Precision
from dljobs.workloads.train.seeding import rng_state, seed_everything, set_rng_state

CPU = torch.device("cpu")
INFO = DataInfo(
    task="classification", input_kind="tabular", input_shape=(6,), input_dtype="float32", num_classes=3
)


def dataset(n: int = 96, seed: int = 0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=generator)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return TensorDataset(x, y)


def model(dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def engine_for(
    net: nn.Module,
    training: TrainingSpec,
    total_steps: int = 100,
    precision: str = "fp32",
    info: DataInfo = INFO,
) -> SupervisedEngine:
    optimizer = build_optimizer(net, training.optimizer)
    schedule = LearningRateSchedule(optimizer, training.schedule, total_steps=total_steps)
    p = Precision(CPU, precision)
    optimization = Optimization(
        optimizer, schedule, p.grad_scaler(), [q for q in net.parameters() if q.requires_grad]
    )
    return SupervisedEngine(net, net, info, training, p, optimization)


def sgd(**training: object) -> TrainingSpec:
    return TrainingSpec(optimizer=OptimizerSpec(name="sgd", lr=0.1, weight_decay=0.0), **training)


def test_micro_steps_group_batches_and_mark_the_last_of_each_group() -> None:
    assert list(micro_steps(5, 2)) == [(0, False, 2), (1, True, 2), (2, False, 2), (3, True, 2), (4, True, 1)]
    assert list(micro_steps(5, 2, start=2)) == [(2, False, 2), (3, True, 2), (4, True, 1)]
    assert list(micro_steps(3, 1)) == [(0, True, 1), (1, True, 1), (2, True, 1)]


def test_accumulating_four_batches_of_eight_equals_one_batch_of_32() -> None:
    data = dataset(32)
    accumulated, big = model(), model()
    engine_for(accumulated, sgd(grad_accumulation=4)).train_epoch(
        DataLoader(data, batch_size=8), num_batches=4
    )
    one = engine_for(big, sgd())
    one.train_epoch(DataLoader(data, batch_size=32), num_batches=1)
    assert one.global_step == 1
    for a, b in zip(accumulated.parameters(), big.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_gradient_clipping_bounds_the_norm_of_the_update() -> None:
    data = TensorDataset(torch.randn(16, 6) * 100, torch.randint(0, 3, (16,)))
    net = model()
    before = [p.detach().clone() for p in net.parameters()]
    training = TrainingSpec(optimizer=OptimizerSpec(name="sgd", lr=1.0, weight_decay=0.0), grad_clip_norm=0.5)
    engine_for(net, training).train_epoch(DataLoader(data, batch_size=16), num_batches=1)
    update = torch.cat([(p.detach() - b).flatten() for p, b in zip(net.parameters(), before, strict=True)])
    assert float(update.norm()) == pytest.approx(0.5, rel=1e-4)  # lr 1: the update is the clipped gradient
    unclipped = model()
    engine_for(unclipped, sgd()).train_epoch(DataLoader(data, batch_size=16), num_batches=1)
    moved = torch.cat(
        [(p.detach() - b).flatten() for p, b in zip(unclipped.parameters(), before, strict=True)]
    )
    assert float(moved.norm()) > 10 * 0.5 * 0.1


def test_bf16_autocast_runs_on_cpu_and_learns() -> None:
    data = dataset(256)
    net = model()
    engine = engine_for(
        net, TrainingSpec(precision="bf16", optimizer=OptimizerSpec(lr=0.01)), precision="bf16"
    )
    seen: list[torch.dtype] = []
    net[0].register_forward_hook(lambda _m, _i, output: seen.append(output.dtype))
    first = engine.train_epoch(DataLoader(data, batch_size=32), num_batches=8).loss("train_loss").reduced()
    for _ in range(15):
        last = engine.train_epoch(DataLoader(data, batch_size=32), num_batches=8).loss("train_loss").reduced()
    assert seen[0] == torch.bfloat16
    assert last < first * 0.8
    result = engine.evaluate(DataLoader(data, batch_size=64), "val")
    assert result.scalars["val_accuracy"] > 0.7


def test_fp16_is_refused_without_a_gpu() -> None:
    from dljobs.workloads.errors import WorkloadError

    with pytest.raises(WorkloadError) as caught:
        Precision(CPU, "fp16")
    assert caught.value.field == "training.precision"


def test_label_smoothing_is_the_smoothed_cross_entropy() -> None:
    engine = engine_for(model(), sgd(label_smoothing=0.2))
    logits, targets = torch.randn(8, 3), torch.randint(0, 3, (8,))
    smooth = torch.full((8, 3), 0.2 / 3).scatter_(1, targets[:, None], 1 - 0.2 + 0.2 / 3)
    expected = -(smooth * F.log_softmax(logits, 1)).sum(1).mean()
    torch.testing.assert_close(engine.criterion(logits, targets), expected)
    confident = torch.tensor([[20.0, 0.0, 0.0]])
    plain = engine_for(model(), sgd()).criterion(confident, torch.tensor([0]))
    assert engine.criterion(confident, torch.tensor([0])) > plain + 1.0  # smoothing penalises over-confidence


def test_regression_and_reconstruction_use_the_mean_squared_error() -> None:
    regression = DataInfo(
        task="regression", input_kind="tabular", input_shape=(6,), input_dtype="float32", target_dim=1
    )
    engine = engine_for(nn.Linear(6, 1), sgd(), info=regression)
    outputs, targets = torch.randn(5, 1), torch.randn(5)
    torch.testing.assert_close(engine.criterion(outputs, targets), ((outputs[:, 0] - targets) ** 2).mean())


# --- checkpoints restore a run exactly ---------------------------------------------------------------


class Run:
    """A miniature of the worker loop: dropout, shuffled batches, Adam with warmup and cosine."""

    training = TrainingSpec(
        optimizer=OptimizerSpec(name="adamw", lr=0.01),
        schedule=ScheduleSpec(name="cosine", warmup_steps=3),
        batch_size=8,
    )

    def __init__(self) -> None:
        seed_everything(11)
        self.net = model(dropout=0.3)
        self.loader, self.sampler = train_loader(
            dataset(), batch_size=8, rank=0, world=1, seed=11, shuffle=True, pin_memory=False
        )
        self.engine = engine_for(self.net, self.training, total_steps=4 * len(self.loader))
        self.epoch = 0
        self.progress = EpochProgress()

    def train(self, epochs: int, stop_after_steps: int | None = None) -> None:
        while self.epoch < epochs:
            self.sampler.set_epoch(self.epoch, self.progress.batches_done)
            self.progress = self.engine.train_epoch(
                self.loader,
                num_batches=12,
                progress=self.progress,
                interrupt=lambda done: stop_after_steps is not None and done >= stop_after_steps,
            )
            if not self.progress.completed:
                return
            self.epoch += 1
            self.progress = EpochProgress()

    def save(self, directory: Path) -> None:
        state = {
            "epoch": self.epoch,
            "progress": self.progress.state_dict(),
            "step": self.engine.global_step,
            "optimization": self.engine.optimization.state_dict(),
        }
        ckpt.write_checkpoint(
            directory,
            rank=0,
            model_state=self.net.state_dict(),
            training_state=state,
            rank_state={"rng": rng_state()},
            meta={"epoch": self.epoch},
        )

    def load(self, directory: Path) -> None:
        model_state, state, own = ckpt.read_checkpoint(directory, 0)
        assert own is not None
        self.net.load_state_dict(model_state)
        self.engine.optimization.load_state_dict(state["optimization"])
        self.engine.global_step = state["step"]
        self.epoch, self.progress = state["epoch"], EpochProgress.from_state(state["progress"])
        set_rng_state(own["rng"])


def test_resuming_from_an_epoch_checkpoint_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    straight = Run()
    straight.train(4)
    first = Run()
    first.train(2)
    first.save(tmp_path)
    seed_everything(999)  # a new process: other random state
    resumed = Run()
    resumed.load(tmp_path)
    resumed.train(4)
    for a, b in zip(straight.net.state_dict().values(), resumed.net.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.engine.optimization.schedule.current_lr == straight.engine.optimization.schedule.current_lr


def test_resuming_inside_an_epoch_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    straight = Run()
    straight.train(3)
    first = Run()
    first.train(1)
    first.train(3, stop_after_steps=5)  # interrupted after 5 of epoch 2's 12 steps
    assert first.epoch == 1 and first.progress.batches_done == 5 and not first.progress.completed
    first.save(tmp_path)
    resumed = Run()
    resumed.load(tmp_path)
    resumed.train(3)
    assert resumed.engine.global_step == straight.engine.global_step == 36
    for a, b in zip(straight.net.state_dict().values(), resumed.net.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- the GAN step --------------------------------------------------------------------------------------


class TinyGAN(nn.Module):
    latent_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        self.discriminator = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))


def test_gan_steps_train_both_networks_and_keep_discriminator_gradients_clean() -> None:
    torch.manual_seed(0)
    gan = TinyGAN()
    real = torch.randn(256, 2) * 0.1 + torch.tensor([2.0, -1.0])
    training = TrainingSpec(
        optimizer=OptimizerSpec(name="adam", lr=0.01, betas=(0.5, 0.999), weight_decay=0.0), batch_size=32
    )
    precision = Precision(CPU)

    def optimization(module: nn.Module) -> Optimization:
        optimizer = build_optimizer(module, training.optimizer)
        return Optimization(
            optimizer,
            LearningRateSchedule(optimizer, training.schedule, total_steps=100),
            precision.grad_scaler(),
            list(module.parameters()),
        )

    engine = GANEngine(
        gan.generator,
        gan.discriminator,
        gan,
        training,
        precision,
        optimization(gan.generator),
        optimization(gan.discriminator),
        noise=torch.Generator().manual_seed(1),
        real_label=0.9,
    )
    with torch.no_grad():
        start = gan.generator(torch.randn(512, 4)).mean(0)
    for _ in range(60):
        progress = engine.train_epoch(DataLoader(TensorDataset(real, real), batch_size=32), num_batches=8)
    assert set(progress.losses) == {"g_loss", "d_loss"}
    assert all(p.requires_grad for p in gan.discriminator.parameters())
    with torch.no_grad():
        moved = gan.generator(torch.randn(512, 4)).mean(0)
    target = torch.tensor([2.0, -1.0])
    assert float((moved - target).norm()) < 0.5 * float((start - target).norm())


def test_models_copied_for_comparison_are_independent() -> None:
    a = model()
    b = copy.deepcopy(a)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))

"""Optimizers and learning-rate schedules: each optimizer as the spec asks, warmup then decay, per step or per
epoch as each schedule means it, and exact restore from a state dict."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from dljobs.spec.training import OptimizerSpec, ScheduleSpec
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.train.optim import LearningRateSchedule, build_optimizer


def small_model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


@pytest.mark.parametrize(
    ("spec", "kind", "checks"),
    [
        (
            OptimizerSpec(name="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
            torch.optim.SGD,
            {"momentum": 0.9, "nesterov": True},
        ),
        (
            OptimizerSpec(name="adam", lr=0.01, betas=(0.8, 0.99), eps=1e-6),
            torch.optim.Adam,
            {"betas": (0.8, 0.99), "eps": 1e-6},
        ),
        (OptimizerSpec(name="adamw", lr=0.002, weight_decay=0.05), torch.optim.AdamW, {}),
        (OptimizerSpec(name="rmsprop", lr=0.003, momentum=0.5), torch.optim.RMSprop, {"momentum": 0.5}),
    ],
)
def test_each_optimizer_is_built_as_the_spec_says(spec: OptimizerSpec, kind: type, checks: dict) -> None:
    model = small_model()
    optimizer = build_optimizer(model, spec)
    assert type(optimizer) is kind
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == spec.weight_decay and plain["weight_decay"] == 0.0
    # weights decay; biases and batch-norm scales do not
    assert {p.ndim for p in decayed["params"]} == {2} and {p.ndim for p in plain["params"]} == {1}
    for group in optimizer.param_groups:
        assert group["lr"] == spec.lr
        for key, value in checks.items():
            assert group[key] == value
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(16, 4)).pow(2).mean().backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_frozen_parameters_are_left_out_and_a_fully_frozen_model_is_refused() -> None:
    model = small_model()
    model[0].weight.requires_grad_(False)
    optimizer = build_optimizer(model, OptimizerSpec())
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(model[0].weight) not in trained and id(model[3].weight) in trained
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    with pytest.raises(WorkloadError, match="frozen") as caught:
        build_optimizer(model, OptimizerSpec())
    assert caught.value.field == "workload.freeze"


def test_two_optimizers_can_have_their_own_rates() -> None:
    """The GAN's discriminator gets its own optimizer at discriminator_lr."""
    generator, discriminator = small_model(), small_model()
    spec = OptimizerSpec(name="adam", lr=0.0002)
    g, d = build_optimizer(generator, spec), build_optimizer(discriminator, spec, lr=0.0004)
    assert {group["lr"] for group in g.param_groups} == {0.0002}
    assert {group["lr"] for group in d.param_groups} == {0.0004}


def lrs(
    spec: ScheduleSpec,
    *,
    epochs: int,
    steps_per_epoch: int,
    lr: float = 1.0,
    metrics: list[float] | None = None,
) -> list[list[float]]:
    """The learning rate used by every optimizer step, epoch by epoch."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(2, 2))], lr=lr)
    schedule = LearningRateSchedule(optimizer, spec, total_steps=epochs * steps_per_epoch)
    out = []
    for epoch in range(epochs):
        rates = []
        for _ in range(steps_per_epoch):
            rates.append(optimizer.param_groups[0]["lr"])
            schedule.after_step()
        out.append(rates)
        schedule.after_epoch({spec.monitor: metrics[epoch]} if metrics else {})
    return out


def test_no_schedule_keeps_the_rate() -> None:
    assert lrs(ScheduleSpec(), epochs=2, steps_per_epoch=3, lr=0.5) == [[0.5] * 3] * 2


def test_linear_warmup_rises_to_the_rate_per_step() -> None:
    rates = lrs(ScheduleSpec(warmup_steps=4), epochs=2, steps_per_epoch=3)
    assert [r for epoch in rates for r in epoch] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_step_decay_is_per_epoch_after_warmup() -> None:
    rates = lrs(
        ScheduleSpec(name="step", step_size=2, gamma=0.5, warmup_steps=2), epochs=5, steps_per_epoch=2
    )
    assert rates == [pytest.approx(r) for r in ([0.5, 1.0], [1.0, 1.0], [0.5, 0.5], [0.5, 0.5], [0.25, 0.25])]


def test_exponential_decay_is_per_epoch() -> None:
    rates = lrs(ScheduleSpec(name="exponential", gamma=0.9), epochs=3, steps_per_epoch=2)
    assert rates == [pytest.approx(r) for r in ([1.0, 1.0], [0.9, 0.9], [0.81, 0.81])]


def test_cosine_decays_per_step_from_the_end_of_warmup_to_min_lr() -> None:
    spec = ScheduleSpec(name="cosine", warmup_steps=2, min_lr=0.1)
    flat = [r for epoch in lrs(spec, epochs=3, steps_per_epoch=4) for r in epoch]  # 12 steps, 10 of decay
    assert flat[:2] == pytest.approx([0.5, 1.0])
    expected = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t / 10)) for t in range(10)]
    assert flat[2:] == pytest.approx(expected)
    assert all(a > b for a, b in itertools.pairwise(flat[2:]))


def test_linear_decay_per_step() -> None:
    flat = [
        r
        for epoch in lrs(ScheduleSpec(name="linear", min_lr=0.0), epochs=2, steps_per_epoch=2)
        for r in epoch
    ]
    assert flat == pytest.approx([1.0, 0.75, 0.5, 0.25])


def test_one_cycle_rises_to_max_lr_then_falls_far_below_the_start() -> None:
    flat = [
        r for e in lrs(ScheduleSpec(name="one_cycle", max_lr=5.0), epochs=10, steps_per_epoch=10) for r in e
    ]
    peak = flat.index(max(flat))
    assert flat[0] == pytest.approx(1.0) and max(flat) == pytest.approx(5.0, rel=1e-3)
    assert 25 <= peak <= 35
    assert all(a <= b for a, b in itertools.pairwise(flat[: peak + 1]))
    assert all(a >= b for a, b in itertools.pairwise(flat[peak:]))
    assert flat[-1] < 0.01


def test_one_cycle_defaults_to_ten_times_the_rate() -> None:
    flat = [r for e in lrs(ScheduleSpec(name="one_cycle"), epochs=4, steps_per_epoch=10, lr=0.01) for r in e]
    assert max(flat) == pytest.approx(0.1, rel=1e-2)


def test_reduce_on_plateau_cuts_the_rate_after_patience_epochs_without_gain() -> None:
    spec = ScheduleSpec(name="reduce_on_plateau", patience=1, factor=0.5, monitor="val_loss")
    losses = [1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6]
    rates = [epoch[0] for epoch in lrs(spec, epochs=7, steps_per_epoch=1, metrics=losses)]
    # epochs 3 and 4 do not improve on 0.9: after the second the rate halves; then 2 more bad epochs
    assert rates == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5])


def test_reduce_on_plateau_maximises_accuracy_metrics() -> None:
    spec = ScheduleSpec(name="reduce_on_plateau", patience=0, factor=0.1, monitor="val_accuracy")
    rates = [e[0] for e in lrs(spec, epochs=3, steps_per_epoch=1, metrics=[0.5, 0.6, 0.55])]
    assert rates == pytest.approx([1.0, 1.0, 1.0])
    rates = [e[0] for e in lrs(spec, epochs=4, steps_per_epoch=1, metrics=[0.5, 0.6, 0.55, 0.7])]
    assert rates == pytest.approx([1.0, 1.0, 1.0, 0.1])


def test_a_schedule_restores_exactly_from_its_state() -> None:
    spec = ScheduleSpec(name="cosine", warmup_steps=3)
    params = [nn.Parameter(torch.zeros(1))]
    first = LearningRateSchedule(torch.optim.SGD(params, lr=0.1), spec, total_steps=20)
    for _ in range(7):
        first.after_step()
    first.after_epoch({})
    second_optimizer = torch.optim.SGD(params, lr=0.1)
    second = LearningRateSchedule(second_optimizer, spec, total_steps=20)
    second.load_state_dict(first.state_dict())
    assert second.current_lr == first.current_lr
    for _ in range(5):
        first.after_step()
        second.after_step()
        assert second.current_lr == first.current_lr

"""Training overhead of dljobs, in one run: (a) its loop's throughput against a hand-written PyTorch loop,
(b) time from `dljobs submit` to the first reported step against a raw `ray job submit`.

Part (a):
The same built-in model (workload.model and params, built by dljobs), the same data (load_data), the same
batch size, optimizer and thread count, in this process: dljobs' epoch engine (its sampler and loaders,
autocast and gradient-scaler pass-throughs, accumulation bookkeeping, loss accumulation, the preemption
check) against the plain loop a tutorial writes. Each round runs both, in alternating order, and the median
of the per-round ratios is reported. Throughput is samples per second of this process's CPU time (one
thread, all in memory: the work is all CPU), which a busy machine's other processes do not distort as they
distort wall-clock time; the wall-clock ratio is printed beside it.

Part (b) is bench/submit_to_first_step.py (see there): a warm Ray head and controller, the CLI against a
hand-written TorchTrainer script (bench/plain_torchtrainer.py) submitted with `ray job submit`.

    python -m bench.train_overhead [--model mlp] [--source builtin://digits] [--epochs 10]
        [--startup-rounds 5]

Prints samples per second of each and their ratio beside the target (>= 0.95), then both start-up times
and their ratio beside the target (<= 1.1).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bench import submit_to_first_step
from dljobs.spec.loading import validate_spec
from dljobs.workloads.data import load_data
from dljobs.workloads.models import build_model
from dljobs.workloads.train.engine import EpochProgress, Optimization, SupervisedEngine
from dljobs.workloads.train.loaders import train_loader
from dljobs.workloads.train.optim import LearningRateSchedule, build_optimizer
from dljobs.workloads.train.precision import Precision
from dljobs.workloads.train.preemption import PreemptionWatch

TARGET = 0.95


class Clock:
    def __init__(self) -> None:
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def rates(self, samples: int) -> tuple[float, float]:
        """(samples per CPU second, samples per wall-clock second) since the clock started."""
        return samples / (time.process_time() - self.cpu), samples / (time.perf_counter() - self.wall)


def dljobs_epochs(spec, prepared, epochs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build_model(spec.workload, prepared.info)
    training = spec.training
    loader, sampler = train_loader(
        prepared.train,
        batch_size=training.batch_size,
        rank=0,
        world=1,
        seed=0,
        shuffle=True,
        pin_memory=False,
    )
    optimizer = build_optimizer(model, training.optimizer)
    schedule = LearningRateSchedule(optimizer, training.schedule, total_steps=len(loader) * epochs)
    precision = Precision(torch.device("cpu"), training.precision)
    optimization = Optimization(optimizer, schedule, precision.grad_scaler(), list(model.parameters()))
    engine = SupervisedEngine(model, model, prepared.info, training, precision, optimization)
    watch = PreemptionWatch()
    samples, clock = 0, Clock()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        progress = engine.train_epoch(
            loader, num_batches=len(loader), progress=EpochProgress(), interrupt=watch
        )
        progress.loss("train_loss").reduced()
        samples += progress.samples
    return clock.rates(samples)


def plain_epochs(spec, prepared, epochs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build_model(spec.workload, prepared.info)
    loader = DataLoader(prepared.train, batch_size=spec.training.batch_size, shuffle=True)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=spec.training.optimizer.lr, weight_decay=spec.training.optimizer.weight_decay
    )
    samples, clock = 0, Clock()
    for _ in range(epochs):
        model.train()
        running = 0.0
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(inputs), targets)
            loss.backward()
            optimizer.step()
            running += loss.item()
            samples += inputs.shape[0]
    return clock.rates(samples)


def loop_overhead(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    spec = validate_spec(
        {
            "name": "bench",
            "workload": {"model": args.model},
            "data": {"source": args.source},
            "training": {"batch_size": args.batch_size, "optimizer": {"name": "adamw"}},
        }
    )
    prepared = load_data(spec, seed=0)
    dljobs_epochs(spec, prepared, 1)  # warm up both paths
    plain_epochs(spec, prepared, 1)
    ours, plain = [], []
    for round_ in range(args.rounds):
        if round_ % 2:  # alternate which goes first
            plain.append(plain_epochs(spec, prepared, args.epochs))
            ours.append(dljobs_epochs(spec, prepared, args.epochs))
        else:
            ours.append(dljobs_epochs(spec, prepared, args.epochs))
            plain.append(plain_epochs(spec, prepared, args.epochs))
    cpu = [o[0] / p[0] for o, p in zip(ours, plain, strict=True)]
    wall = [o[1] / p[1] for o, p in zip(ours, plain, strict=True)]
    ratio = statistics.median(cpu)
    print(
        f"model {args.model} on {args.source}, batch {args.batch_size}, {args.threads} thread(s), "
        f"{args.rounds} rounds of {args.epochs} epochs"
    )
    print(f"dljobs loop:   {statistics.median(o[0] for o in ours):10.0f} samples per CPU second (median)")
    print(f"plain PyTorch: {statistics.median(p[0] for p in plain):10.0f} samples per CPU second (median)")
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    print(
        f"ratio: {ratio:.3f} (target >= {TARGET}) {verdict}; rounds {min(cpu):.3f}-{max(cpu):.3f}; "
        f"wall-clock ratio {statistics.median(wall):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--source", default="builtin://digits")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--startup-rounds", type=int, default=5)
    args = parser.parse_args()
    print("(a) throughput of the training loop")
    loop_overhead(args)
    print("(b) start-up: submit to the first reported step")
    submit_to_first_step.report(submit_to_first_step.measure(args.startup_rounds))


if __name__ == "__main__":
    main()

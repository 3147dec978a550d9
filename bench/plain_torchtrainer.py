"""The baseline of bench/train_overhead.py part (b): a hand-written Ray Train v2 script, run with a raw
`ray job submit`, doing what a built-in dljobs job does up to its first report.

The same work as dljobs' `mlp` on `builtin://digits`: the driver loads and standardizes the set and splits
off validation; each of `--workers` TorchTrainer workers builds the MLP, wraps it for DDP, trains one epoch
on its shard, validates, saves a checkpoint and reports it with its metrics (`ray.train.report`). Rank 0
then writes the unix time of that first report to `--first-report-file`, on the same clock as dljobs'
metric timestamps.

    python bench/plain_torchtrainer.py --first-report-file /tmp/t --storage /tmp/runs [--workers 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
import uuid
from typing import Any


def train_func(config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    torch.manual_seed(config["seed"])
    torch.set_num_threads(config["threads"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    train = TensorDataset(config["x_train"], config["y_train"])
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=config["seed"])
    loader = DataLoader(train, batch_size=config["batch_size"], sampler=sampler)
    sizes = [config["x_train"].shape[1], *config["hidden"]]
    layers: list[nn.Module] = []
    for width_in, width_out in itertools.pairwise(sizes):
        layers += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(config["dropout"])]
    model = ray.train.torch.prepare_model(nn.Sequential(*layers, nn.Linear(sizes[-1], 10)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.01)
    for epoch in range(config["epochs"]):
        sampler.set_epoch(epoch)
        model.train()
        total = 0.0
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(inputs), targets)
            loss.backward()
            optimizer.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            predicted = model(config["x_val"]).argmax(-1)
        metrics = {
            "epoch": epoch + 1,
            "train_loss": total / len(loader),
            "val_accuracy": (predicted == config["y_val"]).float().mean().item(),
        }
        with tempfile.TemporaryDirectory() as directory:
            if rank == 0:
                torch.save(model.module.state_dict(), os.path.join(directory, "model.pt"))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))
        if rank == 0 and epoch == 0:
            with open(config["first_report_file"], "w") as out:
                out.write(repr(time.time()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first-report-file", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    order = np.random.default_rng(0).permutation(len(x))
    cut = int(len(x) * 0.8)
    train, val = order[:cut], order[cut:]
    config = {
        "x_train": torch.from_numpy(x[train]),
        "y_train": torch.from_numpy(digits.target[train]),
        "x_val": torch.from_numpy(x[val]),
        "y_val": torch.from_numpy(digits.target[val]),
        "hidden": [128, 64],
        "dropout": 0.2,
        "lr": 1e-3,
        "batch_size": 64,
        "epochs": args.epochs,
        "seed": 0,
        "threads": 1,
        "first_report_file": args.first_report_file,
    }
    trainer = TorchTrainer(
        train_func,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=args.workers, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(name=f"plain-{uuid.uuid4().hex[:8]}", storage_path=args.storage),
    )
    trainer.fit()


if __name__ == "__main__":
    main()

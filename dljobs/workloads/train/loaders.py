"""Data loaders for one worker: a seeded distributed sampler for training, unpadded shards for evaluation.

The training sampler is Torch's DistributedSampler (seeded with the job's seed, reshuffled per epoch with
`set_epoch`), so the order of every epoch is fixed by (seed, epoch, world size); a resumed run skips the
batches it already trained. Evaluation shards take every world-th example without DistributedSampler's
padding, so no example is counted twice in a metric.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset

EVAL_BATCH_SIZE = 512


class SkippingSampler(Sampler[int]):
    """A DistributedSampler whose first `skip` batches are left out (resuming inside an epoch)."""

    def __init__(self, sampler: DistributedSampler[Any], batch_size: int) -> None:
        self.sampler, self.batch_size, self.skip = sampler, batch_size, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.skip = skip_batches

    def __iter__(self) -> Iterator[int]:
        indices = list(self.sampler)
        return iter(indices[self.skip * self.batch_size :])

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip * self.batch_size)


def train_loader(
    dataset: Dataset[Any],
    *,
    batch_size: int,
    rank: int,
    world: int,
    seed: int,
    shuffle: bool,
    pin_memory: bool,
) -> tuple[DataLoader[Any], SkippingSampler]:
    distributed = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
    sampler = SkippingSampler(distributed, batch_size)
    # A last batch of a single example breaks batch norm in training mode: leave it out.
    drop_last = len(distributed) % batch_size == 1 and len(distributed) > 1
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=_own_generator(seed),
    )
    return loader, sampler


def shard(dataset: Dataset[Any], rank: int, world: int) -> Dataset[Any]:
    """Every world-th example from `rank`: evaluation shards, no example counted twice."""
    size = len(dataset)  # type: ignore[arg-type]
    return Subset(dataset, range(rank, size, world)) if world > 1 else dataset


def eval_loader(
    dataset: Dataset[Any] | None, *, batch_size: int, rank: int, world: int, pin_memory: bool
) -> DataLoader[Any] | None:
    if dataset is None:
        return None
    return DataLoader(
        shard(dataset, rank, world),
        batch_size=max(EVAL_BATCH_SIZE, batch_size),
        shuffle=False,
        pin_memory=pin_memory,
        generator=_own_generator(0),
    )


def _own_generator(seed: int) -> torch.Generator:
    """Each iterator a DataLoader starts draws a seed from its generator: with its own, that draw leaves the
    global random state (dropout, augmentation) alone, so resuming inside an epoch replays it exactly."""
    return torch.Generator().manual_seed(seed)
